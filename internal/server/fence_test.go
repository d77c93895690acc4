package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// The fence at the group level: an application that ignores SIGTERM and
// starts a writer that double-forks, calls setsid, clears its environment
// and closes every descriptor it inherited (the volume lock included)
// appends CLOCK_MONOTONIC timestamps tagged with its instance id to a file
// in its volume. Terminated, or replaced after a failed health check,
// with or without the controller SIGKILLed while it stops the instance:
// the replacement's first write comes after the old writers' last, and no
// process of the old instance is left.

var hostileBin struct {
	once sync.Once
	path string
	err  error
}

// buildHostile builds the provider's hostile test application once.
func buildHostile(t *testing.T) string {
	t.Helper()
	hostileBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "autoheal-hostile")
		if err != nil {
			hostileBin.err = err
			return
		}
		hostileBin.path = filepath.Join(dir, "hostile")
		cmd := exec.Command("go", "build", "-o", hostileBin.path, "./internal/provider/local/testdata/hostile")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			hostileBin.err = fmt.Errorf("build hostile: %v: %s", err, out)
		}
	})
	if hostileBin.err != nil {
		t.Fatal(hostileBin.err)
	}
	return hostileBin.path
}

// fenceScenario is one group running the hostile application.
type fenceScenario struct {
	t     *testing.T
	state string
	cfg   string
	vol   string // the volume's data directory
	token string
}

func newFenceScenario(t *testing.T) *fenceScenario {
	t.Helper()
	s := &fenceScenario{t: t, state: t.TempDir(), token: fmt.Sprintf("hostile-%d-%d", os.Getpid(), time.Now().UnixNano())}
	s.vol = filepath.Join(s.state, "volumes", "hostile", "data", "data")
	s.cfg = writeConfig(t, fmt.Sprintf(`
groups:
  - name: hostile
    launch:
      command: %s
      args: [app, -out, %s, -pids, %s, -token, %s, -ignore-term, -double-fork, -setsid, -env-clear, -close-fds]
      stop_timeout: 1s
    volumes:
      - name: data
    health_checks:
      - type: exec
        command: test ! -e "$AUTOHEAL_VOLUME_DATA/unhealthy-$AUTOHEAL_INSTANCE_ID"
        interval: 100ms
        unhealthy_threshold: 2
    heal:
      max_restarts: 0
      backoff_base: 10ms
      backoff_cap: 50ms
      max_replacements: 10
`, buildHostile(t), s.writes(), filepath.Join(s.vol, "pids"), s.token))
	// Whatever happens to the fence, nothing is left on the machine: the
	// harness finds instances by their environment, which the writer
	// cleared.
	t.Cleanup(func() {
		for range 100 {
			pids := s.processes()
			if len(pids) == 0 {
				return
			}
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return s
}

func (s *fenceScenario) writes() string { return filepath.Join(s.vol, "writes") }

// processes lists the live processes whose command line holds the token.
func (s *fenceScenario) processes() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s.token)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && !isZombie(st) {
			out = append(out, pid)
		}
	}
	return out
}

// stamps returns the writers' timestamps (CLOCK_MONOTONIC) by instance id.
func (s *fenceScenario) stamps() map[string][]int64 {
	b, _ := os.ReadFile(s.writes())
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1] // a line being written is not complete yet
	} else {
		b = nil
	}
	out := map[string][]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[f[2]] = append(out[f[2]], n)
		}
	}
	return out
}

// waitWrites waits until the writer of instance id has written n lines.
func (s *fenceScenario) waitWrites(id string, n int) {
	s.t.Helper()
	waitFor(s.t, 20*time.Second, fmt.Sprintf("%d writes of %s", n, id), func() bool { return len(s.stamps()[id]) >= n })
}

// waitStopping waits until instance id got its stop signal: the controller
// is in the middle of stopping it (the application ignores it).
func (s *fenceScenario) waitStopping(id string) {
	s.t.Helper()
	waitFor(s.t, 20*time.Second, "the stop signal to "+id, func() bool {
		_, err := os.Stat(s.writes() + "." + id + ".sigterm")
		return err == nil
	})
}

// waitReplacement waits for an instance other than old in service.
func (s *fenceScenario) waitReplacement(e *env, old string) wire.Instance {
	s.t.Helper()
	var repl wire.Instance
	waitFor(s.t, 30*time.Second, "a replacement of "+old+" in service", func() bool {
		for _, in := range e.live() {
			if in.ID != old && in.State == "InService" {
				repl = in
				return true
			}
		}
		return false
	})
	return repl
}

// check fails unless every write of old came before the first of repl and
// no process old started is alive.
func (s *fenceScenario) check(e *env, old, repl string) {
	s.t.Helper()
	s.waitWrites(repl, 50) // time for a surviving old writer to show itself
	st := s.stamps()
	olds, news := st[old], st[repl]
	if len(olds) == 0 {
		s.t.Fatalf("no writes of %s", old)
	}
	if last, first := olds[len(olds)-1], news[0]; last >= first {
		n := 0
		for _, ts := range olds {
			if ts >= first {
				n++
			}
		}
		s.t.Errorf("two writers on one volume: %s wrote %d times after %s's first write, the last %v after it\n%s",
			old, n, repl, time.Duration(last-first), e.dumpEvents())
	}
	b, _ := os.ReadFile(filepath.Join(s.vol, "pids"))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != old {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || isZombie(stat) {
			continue
		}
		if fs := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:])); len(fs) > 19 && fs[19] == f[1] {
			s.t.Errorf("process %d of %s alive after its replacement is in service", pid, old)
		}
	}
}

func TestFenceTerminate(t *testing.T) {
	t.Parallel()
	s := newFenceScenario(t)
	e := startInProcess(t, s.cfg, s.state)
	old := e.waitInService(1, 30*time.Second)[0].ID
	s.waitWrites(old, 20)
	if _, err := e.client.Terminate(context.Background(), old, false); err != nil {
		t.Fatal(err)
	}
	s.check(e, old, s.waitReplacement(e, old).ID)
}

func TestFenceHealthReplacement(t *testing.T) {
	t.Parallel()
	s := newFenceScenario(t)
	e := startInProcess(t, s.cfg, s.state)
	old := e.waitInService(1, 30*time.Second)[0].ID
	s.waitWrites(old, 20)
	if err := os.WriteFile(filepath.Join(s.vol, "unhealthy-"+old), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.check(e, old, s.waitReplacement(e, old).ID)
}

// The controller is SIGKILLed while it waits out the stop timeout of the
// instance it terminates; the next one finishes the job.
func TestFenceTerminateControllerKilled(t *testing.T) {
	t.Parallel()
	s := newFenceScenario(t)
	e := startProcess(t, s.cfg, s.state)
	old := e.waitInService(1, 30*time.Second)[0].ID
	s.waitWrites(old, 20)
	if _, err := e.client.Terminate(context.Background(), old, false); err != nil {
		t.Fatal(err)
	}
	s.waitStopping(old)
	e.kill9()
	e = startProcess(t, s.cfg, s.state)
	s.check(e, old, s.waitReplacement(e, old).ID)
}

// The controller is SIGKILLed while it stops an instance that failed its
// health check.
func TestFenceHealthReplacementControllerKilled(t *testing.T) {
	t.Parallel()
	s := newFenceScenario(t)
	e := startProcess(t, s.cfg, s.state)
	old := e.waitInService(1, 30*time.Second)[0].ID
	s.waitWrites(old, 20)
	if err := os.WriteFile(filepath.Join(s.vol, "unhealthy-"+old), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitStopping(old)
	e.kill9()
	e = startProcess(t, s.cfg, s.state)
	s.check(e, old, s.waitReplacement(e, old).ID)
}
