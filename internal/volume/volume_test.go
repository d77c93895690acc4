package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/store"
)

func newManager(t *testing.T) (*Manager, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewManager(dir, st), st
}

func alive(ids ...string) func(string) bool {
	return func(id string) bool {
		for _, a := range ids {
			if a == id {
				return true
			}
		}
		return false
	}
}

func TestPrepare(t *testing.T) {
	m, _ := newManager(t)
	p := m.Paths("web", "data")
	if want := filepath.Join(m.root, "web", "data", "data"); p.Data != want {
		t.Fatalf("data path %s, want %s", p.Data, want)
	}
	needs, err := m.Prepare("web", "data")
	if err != nil {
		t.Fatal(err)
	}
	if !needs {
		t.Fatal("a new volume must need its init")
	}
	for path, mode := range map[string]os.FileMode{filepath.Dir(p.Data): 0o700, p.Data: 0o755} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Fatalf("%s: mode %v, want dir %v", path, fi.Mode(), mode)
		}
	}
	if _, err := os.Stat(p.Lock); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if needs, _ := m.Prepare("web", "data"); !needs {
		t.Fatal("prepare again without marker must still need init")
	}
	if err := os.WriteFile(filepath.Join(p.Data, "db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.MarkInitialized("web", "data"); err != nil {
		t.Fatal(err)
	}
	if needs, err := m.Prepare("web", "data"); err != nil || needs {
		t.Fatalf("after marker: needs %v, %v", needs, err)
	}
	if b, err := os.ReadFile(filepath.Join(p.Data, "db")); err != nil || string(b) != "x" {
		t.Fatalf("prepare touched the data: %q, %v", b, err)
	}

	for _, bad := range [][2]string{{"", "data"}, {"web", ""}, {"..", "data"}, {"web", "a/b"}, {"web", "."}} {
		if _, err := m.Prepare(bad[0], bad[1]); err == nil {
			t.Fatalf("prepare %q/%q succeeded", bad[0], bad[1])
		}
	}
}

func TestAttachDetachCycle(t *testing.T) {
	m, st := newManager(t)
	ctx := context.Background()
	if _, err := m.Prepare("web", "data"); err != nil {
		t.Fatal(err)
	}

	a, err := m.Attach(ctx, "web", "data", "i-1", alive())
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "i-1" || a.Token != 1 || a.Kind != Kind {
		t.Fatalf("first attach %+v", a)
	}
	if err := m.Detach(ctx, "web", "data", "i-2"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("detach by a non-holder: %v, want ErrConflict", err)
	}
	if err := m.Detach(ctx, "web", "data", "i-1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, "web", "data", "i-1"); err != nil {
		t.Fatalf("detach when detached must be a no-op: %v", err)
	}
	if got, _ := st.Attachment(ctx, Kind, "web", "data"); got.Holder != "" || got.Token != 1 {
		t.Fatalf("after detach %+v: holder empty and token kept", got)
	}
	a, err = m.Attach(ctx, "web", "data", "i-2", alive("i-1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Token != 2 {
		t.Fatalf("second attach token %d, want 2", a.Token)
	}
	// Restart in place: same holder, still a new token.
	a, err = m.Attach(ctx, "web", "data", "i-2", alive("i-2"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "i-2" || a.Token != 3 {
		t.Fatalf("re-attach %+v, want i-2 with token 3", a)
	}

	evs, err := st.Events(ctx, store.EventFilter{Group: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, string(ev.Type)+" "+ev.Instance+": "+ev.Message)
	}
	want := []string{
		"volume.attach i-1: data attached to i-1 (token 1)",
		"volume.detach i-1: data detached from i-1 (token 1)",
		"volume.attach i-2: data attached to i-2 (token 2)",
		"volume.attach i-2: data attached to i-2 (token 3)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAttachRefusesLiveHolder(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	if _, err := m.Attach(ctx, "web", "data", "i-1", nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		isAlive func(string) bool
	}{
		{"reported alive", alive("i-1")},
		{"no liveness function proves nothing", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Attach(ctx, "web", "data", "i-2", tt.isAlive)
			if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "i-1") {
				t.Fatalf("attach over a live holder: %v, want ErrHeld naming i-1", err)
			}
		})
	}
	a, err := m.Attach(ctx, "web", "data", "i-2", alive())
	if err != nil {
		t.Fatal(err)
	}
	if a.Token != 2 {
		t.Fatalf("takeover token %d, want 2", a.Token)
	}
}

// holdLock starts `sh -c 'exec sleep 30'` holding the volume's flock, the
// way the local provider's instance processes do: the lock is taken here
// on its own open file description and inherited by the child, and this
// process's descriptor is closed at once.
func holdLock(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "exec sleep 30")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestAttachRefusesWhileAProcessHoldsTheLock(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	if _, err := m.Prepare("web", "data"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Attach(ctx, "web", "data", "i-1", nil); err != nil {
		t.Fatal(err)
	}
	child := holdLock(t, m.Paths("web", "data").Lock)

	// The controller believes i-1 dead, but a process of it survives.
	for _, id := range []string{"i-2", "i-1"} {
		_, err := m.Attach(ctx, "web", "data", id, alive())
		if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "held by a running process") || !strings.Contains(err.Error(), "i-1") {
			t.Fatalf("attach to %s while the lock is held: %v, want ErrHeld naming the lock and i-1", id, err)
		}
	}

	child.Process.Kill()
	child.Wait()
	a, err := m.Attach(ctx, "web", "data", "i-2", alive())
	if err != nil {
		t.Fatalf("attach after the holder died: %v", err)
	}
	if a.Holder != "i-2" || a.Token != 2 {
		t.Fatalf("attach %+v, want i-2 with token 2: refused attaches must not bump", a)
	}
}

func TestCheckToken(t *testing.T) {
	for _, tt := range []struct {
		name    string
		file    string // "" means no file
		token   int64
		wantErr error
		fail    bool
		after   string
	}{
		{name: "no file", token: 1, after: "1\n"},
		{name: "empty file", file: "\n", token: 3, after: "3\n"},
		// What an unsynced write may leave after a power loss.
		{name: "zero-filled file", file: "\x00\x00\x00", token: 3, after: "3\n"},
		{name: "newer", file: "4\n", token: 5, after: "5\n"},
		{name: "same", file: "5\n", token: 5, after: "5\n"},
		{name: "stale", file: "6\n", token: 5, wantErr: ErrFenced, fail: true, after: "6\n"},
		{name: "corrupt", file: "x\n", token: 5, fail: true, after: "x\n"},
		{name: "zero token", token: 0, fail: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckToken(path, tt.token)
			if tt.fail != (err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("CheckToken: %v; want failure %v (%v)", err, tt.fail, tt.wantErr)
			}
			b, _ := os.ReadFile(path)
			if string(b) != tt.after {
				t.Fatalf("token file %q, want %q", b, tt.after)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "token.tmp-*")); len(m) != 0 {
				t.Fatalf("temp files left: %v", m)
			}
		})
	}
}

// TestConcurrentAttach races many instances for one volume. With every
// holder reported alive exactly one attach may win; the rest are refused.
func TestConcurrentAttach(t *testing.T) {
	m, st := newManager(t)
	ctx := context.Background()
	const rounds, racers = 10, 12
	var last int64
	for round := range rounds {
		var wg sync.WaitGroup
		var wins atomic.Int32
		var winner atomic.Value
		for i := range racers {
			wg.Go(func() {
				id := fmt.Sprintf("i-%d-%d", round, i)
				a, err := m.Attach(ctx, "web", "data", id, func(string) bool { return true })
				if err != nil {
					if !errors.Is(err, ErrHeld) && !errors.Is(err, store.ErrConflict) {
						t.Errorf("%s: %v", id, err)
					}
					return
				}
				wins.Add(1)
				winner.Store(a)
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d winners", round, n)
		}
		a := winner.Load().(store.Attachment)
		if a.Token <= last {
			t.Fatalf("round %d: token %d after %d", round, a.Token, last)
		}
		last = a.Token
		if cur, _ := st.Attachment(ctx, Kind, "web", "data"); cur != a {
			t.Fatalf("round %d: stored %+v, winner %+v", round, cur, a)
		}
		if err := m.Detach(ctx, "web", "data", a.Holder); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentInstancesNeverShare runs the whole protocol from many
// goroutines, each an instance of a group whose controller believes every
// other instance dead (the worst case): attach, then take the flock and
// check the token as the local provider does, then "run". However attaches
// and starts interleave, at most one instance may run at any time, and an
// instance that lost the race is stopped by the lock or by its token.
func TestConcurrentInstancesNeverShare(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	if _, err := m.Prepare("web", "data"); err != nil {
		t.Fatal(err)
	}
	p := m.Paths("web", "data")
	var running, ran, fenced atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			id := fmt.Sprintf("i-%d", i)
			for range 10 {
				a, err := m.Attach(ctx, "web", "data", id, func(string) bool { return false })
				if err != nil {
					if !errors.Is(err, ErrHeld) {
						t.Errorf("%s: %v", id, err)
					}
					continue
				}
				f, err := os.OpenFile(p.Lock, os.O_RDWR, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
					f.Close() // launch fails: someone runs
					continue
				}
				if err := CheckToken(p.TokenFile, a.Token); err != nil {
					if !errors.Is(err, ErrFenced) {
						t.Errorf("%s: %v", id, err)
					}
					fenced.Add(1)
					f.Close()
					continue
				}
				if n := running.Add(1); n != 1 {
					t.Errorf("%d instances run on the volume at once", n)
				}
				ran.Add(1)
				time.Sleep(time.Millisecond)
				running.Add(-1)
				f.Close() // the instance exits: its lock goes with it
			}
		})
	}
	wg.Wait()
	if ran.Load() == 0 {
		t.Fatal("no instance ever ran")
	}
	t.Logf("%d runs, %d fenced by token", ran.Load(), fenced.Load())
}

// TestSupersededHolderIsFenced: i-1 was attached but stalled before it
// started; the controller, believing it dead, gave the volume to i-2, which
// ran. When i-1 finally tries to start it must be refused by its token, as
// the lock alone no longer protects anything.
func TestSupersededHolderIsFenced(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	if _, err := m.Prepare("web", "data"); err != nil {
		t.Fatal(err)
	}
	old, err := m.Attach(ctx, "web", "data", "i-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := m.Attach(ctx, "web", "data", "i-2", alive())
	if err != nil {
		t.Fatal(err)
	}
	p := m.Paths("web", "data")
	if err := CheckToken(p.TokenFile, cur.Token); err != nil {
		t.Fatal(err)
	}
	err = CheckToken(p.TokenFile, old.Token)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("stale holder started: %v, want ErrFenced", err)
	}
}
