package main

// "netsvc version": the release, or the module version or VCS revision
// the binary was built from, and the wire protocol it speaks.

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/netsvc-go/netsvc/actors/connection"
)

// version is the release; set with -ldflags "-X main.version=v1.2.3".
// Without it, the module version or VCS revision of the build is shown.
var version = ""

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version",
		usage:   "",
		run: func(_ context.Context, env *cmdEnv) int {
			if len(env.args) > 0 {
				return env.usageError("unexpected argument %q", env.args[0])
			}
			fmt.Fprintf(env.stdout, "netsvc %s (wire protocol %d, %s %s/%s)\n",
				buildVersion(), connection.Protocol, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return exitOK
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return "(devel " + rev + ")"
}
