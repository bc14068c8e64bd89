package main

// Finding the two modules and building the three binaries once.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildAll builds, once, every binary that was not given prebuilt, so that
// the runs measure the benchmarks and not the compiler.
func buildAll(ctx context.Context, cfg *config, dir string) (map[string]string, error) {
	if err := locateDirs(cfg); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, p := range cfg.peers {
		if path, ok := cfg.prebuilt[p]; ok {
			abs, err := exec.LookPath(path)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", p, err)
			}
			bins[p] = abs
			continue
		}
		bins[p] = filepath.Join(dir, p)
		fmt.Fprintf(os.Stderr, "building %s …\n", p)
		if err := build(ctx, cfg, p, bins[p]); err != nil {
			return nil, fmt.Errorf("building %s: %w", p, err)
		}
	}
	return bins, nil
}

// build runs the go build of one peer under a time bound: netsvc lives in
// the root module, the other two in the peerbench module. The error carries
// the compiler's output, which is where it says what went wrong.
func build(ctx context.Context, cfg *config, peer, out string) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := command(ctx, "go", "build", "-o", out, "./"+peer)
	cmd.Dir = cfg.peerbenchDir
	if peer == "netsvc" {
		cmd = command(ctx, "go", "build", "-C", cfg.rootDir, "-o", out, "./cmd/netsvc")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// command is exec.CommandContext with a gentle stop: an interrupt first, so
// that a benchmark can shut its servers down, then a kill after stopGrace.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = stopGrace
	return cmd
}

// locateDirs finds the two modules' directories, but insists on them only
// when something has to be built from them.
func locateDirs(cfg *config) error {
	var needPeerbench, needRoot bool
	for _, p := range cfg.peers {
		if _, ok := cfg.prebuilt[p]; !ok {
			needRoot = needRoot || p == "netsvc"
			needPeerbench = needPeerbench || p != "netsvc"
		}
	}
	if !needPeerbench && !needRoot {
		return nil
	}
	if cfg.peerbenchDir == "" {
		cfg.peerbenchDir = findPeerbench(cfg.rootDir)
	}
	if cfg.rootDir == "" && cfg.peerbenchDir != "" {
		cfg.rootDir = filepath.Join(cfg.peerbenchDir, "..", "..")
	}
	if needPeerbench {
		if err := checkModule("--peerbench", &cfg.peerbenchDir, peerbenchModule); err != nil {
			return err
		}
	}
	if needRoot {
		return checkModule("--root", &cfg.rootDir, rootModule)
	}
	return nil
}

// findPeerbench guesses the peerbench directory: the working directory
// (go run ./compare from cmd/peerbench), else cmd/peerbench under it or
// under --root. It returns "" when no guess holds the module.
func findPeerbench(root string) string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	candidates := []string{wd, filepath.Join(wd, "cmd", "peerbench")}
	if root != "" {
		candidates = append(candidates, filepath.Join(root, "cmd", "peerbench"))
	}
	for _, dir := range candidates {
		if hasModule(dir, peerbenchModule) {
			return dir
		}
	}
	return ""
}

// checkModule makes *dir absolute and makes sure it holds module mod, so
// that a wrong directory fails with a clear message instead of a go build
// error about some other package.
func checkModule(flagName string, dir *string, mod string) error {
	if *dir == "" {
		return fmt.Errorf("cannot find module %s: run from cmd/peerbench or pass %s", mod, flagName)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if !hasModule(abs, mod) {
		return fmt.Errorf("%s: %s does not hold module %s", flagName, abs, mod)
	}
	*dir = abs
	return nil
}

// hasModule reports whether dir/go.mod declares module mod.
func hasModule(dir, mod string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == mod
		}
	}
	return false
}
