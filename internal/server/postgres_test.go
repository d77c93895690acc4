package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/event"
)

// pgBin is where Debian's postgresql-15 package puts the server.
const pgBin = "/usr/lib/postgresql/15/bin"

// needPostgres skips unless PostgreSQL 15 can run here (test.sh installs
// it; with AUTOHEAL_REQUIRE_TOOLS=1 its absence fails).
func needPostgres(t *testing.T) (uid, gid int) {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("AUTOHEAL_REQUIRE_TOOLS") == "1" {
			t.Fatalf("PostgreSQL test cannot run: %s", why)
		}
		t.Skipf("PostgreSQL test skipped: %s", why)
	}
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		skip("PostgreSQL 15 is not installed (Debian package postgresql; test.sh installs it): " + err.Error())
	}
	if os.Geteuid() != 0 {
		skip("PostgreSQL refuses to run as root and the test needs root to run it as user postgres")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		skip("no user postgres: " + err.Error())
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// psql runs one SQL statement against the database on port and returns
// its unaligned output.
func psql(ctx context.Context, port int, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pgBin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres",
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("psql %q: %w: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestPostgresInCrashRecoveryIsNotKilledForBeingSlow (issue 15, bug 5):
// PostgreSQL 15 is the pet, with an exec pg_isready check every second and
// no grace period. It is SIGKILLed ten times while a writer commits rows
// one by one and a bulk insert leaves WAL to replay before each kill.
// Until it answers again, its failed checks are start-up, not failure:
// each kill is healed by exactly one restart in place, it is never
// replaced nor the group impaired, and every committed row is there.
func TestPostgresInCrashRecoveryIsNotKilledForBeingSlow(t *testing.T) {
	t.Parallel()
	uid, gid := needPostgres(t)
	port := freePort(t)
	// The postgres user must own its data directory in the volume:
	// autoheal does not chown volumes; the operator gives a database's
	// volume to its user, as one chowns a new filesystem. The state dir
	// stays private (0700, the controller narrows it), so the database
	// reaches its volume where mount_path bind-mounts it, as on a host.
	state := t.TempDir()
	vol := filepath.Join(state, "volumes", "pg", "data", "data")
	if err := os.MkdirAll(vol, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(vol, uid, gid); err != nil {
		t.Fatal(err)
	}
	mnt, err := os.MkdirTemp("", "autoheal-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(mnt) })
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
groups:
  - name: pg
    launch:
      command: /bin/sh
      # A checkpoint only every hour: each kill leaves the WAL since the
      # start to replay.
      args: ["-c", "exec %[1]s/postgres -D \"$AUTOHEAL_VOLUME_DATA/pg\" -p %[2]d -c listen_addresses=127.0.0.1 -k '' -c checkpoint_timeout=1h -c max_wal_size=4GB -c fsync=on"]
      user: postgres
      workdir: /
      stop_signal: SIGINT
      stop_timeout: 30s
    volumes:
      - name: data
        mount_path: %[3]s
        init: %[1]s/initdb -D "$AUTOHEAL_VOLUME_DATA/pg" --auth=trust -U postgres --no-sync
    health_checks:
      - type: exec
        command: %[1]s/pg_isready -h 127.0.0.1 -p %[2]d
        interval: 1s
    heal:
      max_restarts: 20
      backoff_base: 100ms
      backoff_cap: 1s
`, pgBin, port, mnt))
	e := startProcess(t, cfg, state)
	first := e.waitInService(1, 3*time.Minute)[0]
	ctx := context.Background()
	if _, err := psql(ctx, port, "create table t (id bigint primary key, pad text not null)"); err != nil {
		t.Fatal(err)
	}

	// The writer commits one row at a time; a row whose commit was
	// acknowledged must survive every kill.
	var mu sync.Mutex
	var acked []int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := int64(1_000_000_000); ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := psql(ctx, port, fmt.Sprintf("insert into t values (%d, 'row')", id)); err == nil {
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}
	}()
	const kills, bulk = 10, 20000
	var recoveries []time.Duration
	for round := 0; round < kills; round++ {
		lo := round * bulk
		if _, err := psql(ctx, port, fmt.Sprintf("insert into t select g, repeat('x', 200) from generate_series(%d, %d) g", lo, lo+bulk-1)); err != nil {
			t.Fatalf("round %d: bulk insert: %v\n%s", round, err, e.dumpEvents())
		}
		in := e.live()[0]
		if in.Pid <= 0 {
			t.Fatalf("round %d: no pid to kill: %+v", round, in)
		}
		killed := time.Now()
		if err := syscall.Kill(in.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill %d: %v", round, in.Pid, err)
		}
		waitFor(t, 3*time.Minute, fmt.Sprintf("round %d: PostgreSQL back in service", round), func() bool {
			l := e.live()
			return len(l) == 1 && l[0].State == "InService" && l[0].Health == "healthy" && l[0].Pid > 0 && l[0].Pid != in.Pid
		})
		recoveries = append(recoveries, time.Since(killed))
	}
	close(stop)
	wg.Wait()

	// Every committed row is there.
	for round := 0; round < kills; round++ {
		lo := round * bulk
		n, err := psql(ctx, port, fmt.Sprintf("select count(*) from t where id between %d and %d", lo, lo+bulk-1))
		if err != nil || n != strconv.Itoa(bulk) {
			t.Fatalf("bulk %d: %s rows of %d (%v)", round, n, bulk, err)
		}
	}
	ids := make([]string, len(acked))
	for i, id := range acked {
		ids[i] = strconv.FormatInt(id, 10)
	}
	if len(ids) == 0 {
		t.Fatal("the writer committed nothing")
	}
	n, err := psql(ctx, port, fmt.Sprintf("select count(*) from t where id = any(array[%s]::bigint[])", strings.Join(ids, ",")))
	if err != nil || n != strconv.Itoa(len(ids)) {
		t.Fatalf("%s of %d acknowledged single-row commits survived (%v)", n, len(ids), err)
	}

	// One restart in place per kill: none for slow start-up, no
	// replacement, never Impaired. PostgreSQL may also exit by itself as it
	// starts (a stale postmaster.pid naming a pid that is taken again in the
	// instance's fresh PID namespace: "is another postmaster running?");
	// such an exit is a failure of its own, healed by a restart too, and is
	// counted apart.
	restarts, ownExits := 0, 0
	for _, ev := range e.events() {
		switch d := ev.Data.(type) {
		case event.InstanceHeal:
			if d.Action != "restart" || strings.Contains(d.Failure, "health check") {
				t.Fatalf("heal %s for %q: PostgreSQL recovering was taken for a failure:\n%s", d.Action, d.Failure, e.dumpEvents())
			}
			if !strings.Contains(d.Failure, "SIGKILL") {
				ownExits++
				continue
			}
			restarts++
		case event.InstanceHealth:
			if d.Status == "unhealthy" {
				t.Fatalf("check unhealthy while PostgreSQL started: %s\n%s", d.Output, e.dumpEvents())
			}
		case event.GroupImpaired:
			t.Fatalf("group impaired:\n%s", e.dumpEvents())
		}
	}
	if restarts != kills {
		t.Fatalf("%d restarts for %d kills:\n%s", restarts, kills, e.dumpEvents())
	}
	if ownExits > 0 {
		// Only the stale lock file explains an exit of its own.
		var logs strings.Builder
		e.client.Logs(ctx, api.LogsQuery{Instance: first.ID, Stream: "stderr", Tail: 100000}, &logs)
		if n := strings.Count(logs.String(), "postmaster.pid"); ownExits > kills/2 || n == 0 {
			t.Fatalf("PostgreSQL exited %d times by itself (%d lock file complaints in its log):\n%s\n%s", ownExits, n, lastBytes(logs.String(), 4<<10), e.dumpEvents())
		}
	}
	st, _ := e.client.Status(ctx, true)
	if len(st.Instances) != 1 || st.Instances[0].ID != first.ID || st.Instances[0].Restarts != kills+ownExits || st.Groups[0].Status != "Active" {
		t.Fatalf("status %+v, want %s alone, restarted in place %d times, group Active", st, first.ID, kills+ownExits)
	}
	t.Logf("%d kills, each healed by one restart in place (and %d exits of its own at start-up); kill to InService: %v; %d single-row commits and %d bulk rows kept",
		kills, ownExits, recoveries, len(acked), kills*bulk)
}
