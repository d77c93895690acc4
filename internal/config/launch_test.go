package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRelativePathsAreResolvedAgainstTheConfigDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "autoheal.yaml")
	if err := os.WriteFile(p, []byte("groups:\n  - name: g\n    launch:\n      command: ./app\n  - name: h\n    launch:\n      command: app\n      workdir: work\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A command without a slash is looked up in PATH, never in the
	// config's directory.
	t.Setenv("PATH", dir)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ command, workdir string }{
		{filepath.Join(dir, "app"), dir},
		{filepath.Join(dir, "app"), filepath.Join(dir, "work")},
	} {
		l := cfg.Groups[i].Launch
		if l.Command != want.command || l.Workdir != want.workdir {
			t.Errorf("group %d: command %s workdir %s, want %s %s", i, l.Command, l.Workdir, want.command, want.workdir)
		}
	}
}

func TestUserNeedsRoot(t *testing.T) {
	cfg := "groups:\n  - name: g\n    launch:\n      command: sh\n      user: %s\n"
	if euid := os.Geteuid(); euid != 0 {
		_, err := Parse("mem.yaml", []byte(strings.Replace(cfg, "%s", "root", 1)))
		want := `mem.yaml:5:13: user "root": autoheal must run as root to run instances as another user`
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
		// Naming oneself needs no privilege.
		if _, err := Parse("mem.yaml", []byte(strings.Replace(cfg, "%s", strconv.Itoa(euid), 1))); err != nil {
			t.Errorf("user %d (ourselves): %v", euid, err)
		}
		return
	}
	for name, want := range map[string]string{
		"root":            "",
		"0":               "",
		"no-such-user-xy": `mem.yaml:5:13: user "no-such-user-xy" does not exist`,
		"4000000000":      `mem.yaml:5:13: user "4000000000" does not exist`,
	} {
		_, err := Parse("mem.yaml", []byte(strings.Replace(cfg, "%s", name, 1)))
		if got := errString(err); got != want {
			t.Errorf("user %s: got %q, want %q", name, got, want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"data": "DATA", "my-vol": "MY_VOL", "a_b": "A_B", "v1.2": "V1_2"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}
