package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a node the chaos command started
// when the command dies, so a killed run leaves no nodes behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
