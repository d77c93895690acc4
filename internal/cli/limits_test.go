package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileFilesBinary runs the real binary on the files of the
// reports: `autoheal validate` and `autoheal serve` refuse a 50 MB config
// of junk keys, a 50 MB value and a file with a bad byte with exit code 2
// and FILE:LINE:COL: message, and `autoheal documents validate` refuses a
// 50 MB document the same way.
func TestHostileFilesBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "autoheal")
	build := exec.Command("go", "build", "-o", bin, "./cmd/autoheal")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	junk := strings.Repeat("junk: key\n", 5<<20)
	value := "groups:\n- name: a\n  launch: {command: sh}\n  parameters:\n  - name: p\n    value: " + strings.Repeat("v", 50<<20) + "\n"
	files := map[string]string{
		"junk.yaml":  junk,
		"value.yaml": value,
		"utf8.yaml":  "groups:\n- name: a\n  launch: {command: \"sh\xff\"}\n",
		"doc.yaml":   "schemaVersion: \"0.3\"\n" + junk,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	junk, value = "", ""
	tooBig := ":1:1: file size exceeds limit 4194304 bytes (config file size)"
	tests := []struct {
		args []string
		want string // on stderr, after the file's path
	}{
		{[]string{"validate", "junk.yaml"}, tooBig},
		{[]string{"validate", "--config", "value.yaml"}, tooBig},
		{[]string{"validate", "utf8.yaml"}, ":3:24: invalid UTF-8 (byte 0xff): the file must be UTF-8 text"},
		{[]string{"serve", "--config", "junk.yaml", "--state-dir", filepath.Join(dir, "state")}, tooBig},
		{[]string{"serve", "--config", "utf8.yaml", "--state-dir", filepath.Join(dir, "state")}, ":3:24: invalid UTF-8 (byte 0xff): the file must be UTF-8 text"},
		{[]string{"documents", "validate", "doc.yaml"}, ":1:1: file size exceeds limit 1048576 bytes (document file size)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != ExitConfig {
				t.Fatalf("exit: %v, want code %d; stderr:\n%s", err, ExitConfig, stderr.String())
			}
			file := tt.args[len(tt.args)-1]
			if tt.args[0] == "serve" {
				file = tt.args[2]
			}
			if !strings.Contains(stderr.String(), file+tt.want) {
				t.Fatalf("stderr:\n%.500s\nwant %s%s", stderr.String(), file, tt.want)
			}
		})
	}
}

func moduleRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatal("no go.mod above " + wd)
	return ""
}
