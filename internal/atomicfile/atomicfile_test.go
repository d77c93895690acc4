package atomicfile

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A re-executed test binary is a writer that the test SIGKILLs at a step
// boundary: it prints the step on stdout and blocks there.
const (
	envPath   = "ATOMICFILE_TEST_PATH"
	envStep   = "ATOMICFILE_TEST_STEP"
	envNoSync = "ATOMICFILE_TEST_NOSYNC"
)

// stepHalf is the middle of the content's write, a boundary of the
// test's streaming writer rather than of the package.
const stepHalf step = "half-written"

var (
	oldContent = []byte("old content\n")
	newContent = bytes.Repeat([]byte("new content, long enough to take two writes\n"), 2000)
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envPath); path != "" {
		os.Exit(blockingWriter(path, step(os.Getenv(envStep)), os.Getenv(envNoSync) != ""))
	}
	os.Exit(m.Run())
}

// blockingWriter replaces path with newContent and blocks for ever at
// step, after saying so on stdout.
func blockingWriter(path string, at step, noSync bool) int {
	block := func(s step) {
		if s == at {
			os.Stdout.WriteString(string(s) + "\n")
			for {
				time.Sleep(time.Hour) // until SIGKILL; select{} would be a deadlock
			}
		}
	}
	afterStep = block
	var err error
	if noSync {
		err = WriteFileNoSync(path, newContent, 0o644)
	} else {
		err = Write(path, 0o644, func(w io.Writer) error {
			half := len(newContent) / 2
			if _, err := w.Write(newContent[:half]); err != nil {
				return err
			}
			block(stepHalf)
			_, err := w.Write(newContent[half:])
			return err
		})
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("done\n")
	return 0
}

// TestKilledBetweenSteps: a writer SIGKILLed at every step boundary leaves
// the old content (before the rename) or the new one (after it), never a
// torn or empty file.
func TestKilledBetweenSteps(t *testing.T) {
	durableSteps := []step{stepCreated, stepHalf, stepWritten, stepSynced, stepClosed, stepRenamed, stepDirSynced}
	noSyncSteps := []step{stepCreated, stepWritten, stepClosed, stepRenamed}
	for _, tc := range []struct {
		name   string
		noSync bool
		steps  []step
	}{{"durable", false, durableSteps}, {"no sync", true, noSyncSteps}} {
		for _, s := range tc.steps {
			t.Run(tc.name+"/"+string(s), func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "state.json")
				if err := os.WriteFile(path, oldContent, 0o644); err != nil {
					t.Fatal(err)
				}
				killAt(t, path, s, tc.noSync)
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				renamed := s == stepRenamed || s == stepDirSynced
				switch {
				case renamed && !bytes.Equal(got, newContent):
					t.Fatalf("killed after the rename: %d bytes, not the new content", len(got))
				case !renamed && !bytes.Equal(got, oldContent):
					t.Fatalf("killed before the rename: %q..., not the old content", got[:min(len(got), 40)])
				}
			})
		}
	}
}

// killAt runs the writer, waits until it reports step s, and SIGKILLs it.
func killAt(t *testing.T, path string, s step, noSync bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envPath+"="+path, envStep+"="+string(s))
	if noSync {
		cmd.Env = append(cmd.Env, envNoSync+"=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != string(s) {
		t.Fatalf("writer said %q (%v), want %q; stderr: %s", line, err, s, stderr.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
}

// TestStepOrder pins the order that makes the write durable: the data is
// synced before the rename, and the directory after it. Without the first
// a crash may leave the new name on empty blocks; without the second the
// rename itself may be lost.
func TestStepOrder(t *testing.T) {
	var got []string
	afterStep = func(s step) { got = append(got, string(s)) }
	syncFile = func(f *os.File) error {
		got = append(got, "fsync "+filepath.Base(f.Name()))
		return f.Sync()
	}
	defer func() { afterStep, syncFile = nil, (*os.File).Sync }()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The temporary file's name is random: "fsync f.tmp-*".
	for i, s := range got {
		if strings.HasPrefix(s, "fsync f.tmp-") {
			got[i] = "fsync temp"
		}
	}
	want := []string{"created", "written", "fsync temp", "synced", "closed", "renamed", "fsync " + filepath.Base(dir), "dir-synced"}
	if !slices.Equal(got, want) {
		t.Fatalf("durable steps %q, want %q", got, want)
	}
	got = nil
	if err := WriteFileNoSync(path, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	if want := []string{"created", "written", "closed", "renamed"}; !slices.Equal(got, want) {
		t.Fatalf("no-sync steps %q, want %q", got, want)
	}
}

func TestModeAndNoLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", fi.Mode(), err)
	}
	// A failing writer leaves the old content and no temporary file.
	boom := errors.New("boom")
	if err := Write(path, 0o640, func(w io.Writer) error { w.Write([]byte("partial")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a" {
		t.Fatalf("content %q after a failed write", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left in the dir: %v", ents)
	}
	// A missing directory is an error naming the file.
	if err := WriteFile(filepath.Join(dir, "no", "f"), nil, 0o600); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "no", "f")) {
		t.Fatalf("err %v", err)
	}
}
