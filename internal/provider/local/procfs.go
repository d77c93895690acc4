//go:build linux

package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// procStat is what autoheal needs from /proc/<pid>/stat.
type procStat struct {
	State byte   // field 3: R, S, D, Z, ...
	Ppid  int    // field 4
	Pgid  int    // field 5
	Start uint64 // field 22: start time in clock ticks after boot
}

func (s procStat) zombie() bool { return s.State == 'Z' || s.State == 'X' }

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	var s procStat
	var err error
	s.State = f[0][0]
	if s.Ppid, err = strconv.Atoi(string(f[1])); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	if s.Pgid, err = strconv.Atoi(string(f[2])); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	if s.Start, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return s, nil
}

// startTime returns field 22 of /proc/<pid>/stat. Together with the pid it
// identifies a process across pid reuse: a reused pid has a later start.
func startTime(pid int) (uint64, error) {
	s, err := readStat(pid)
	return s.Start, err
}

// readEnviron returns the NUL-separated initial environment of pid. It is
// empty for kernel threads and zombies, and unreadable (EACCES) for other
// users' processes unless we are root.
func readEnviron(pid int) ([]byte, error) {
	return os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
}

// envLookup finds KEY's value in a NUL-separated environment block. The
// match is exact: "KEY=" must start an entry.
func envLookup(env []byte, key string) (string, bool) {
	for len(env) > 0 {
		var e []byte
		if i := bytes.IndexByte(env, 0); i >= 0 {
			e, env = env[:i], env[i+1:]
		} else {
			e, env = env, nil
		}
		if len(e) > len(key) && e[len(key)] == '=' && string(e[:len(key)]) == key {
			return string(e[len(key)+1:]), true
		}
	}
	return "", false
}

// procEntry is one process found by scanProcs.
type procEntry struct {
	pid  int
	stat procStat
	ours bool   // its AUTOHEAL_STATE_DIR is ours
	id   string // its AUTOHEAL_INSTANCE_ID when ours
}

// scanProcs lists live (non-zombie) processes other than this one. For each
// it reads the stat file; when withEnv(stat) is true it also reads environ
// and records the instance id of the processes whose AUTOHEAL_STATE_DIR is
// exactly stateDir. keep decides, from the entry, whether it is returned.
// Processes that vanish mid-scan are skipped. A scan reads a file or two
// per process on the host, so it uses raw syscalls and one buffer: on a
// small VM each syscall costs microseconds and os.ReadFile makes five.
func scanProcs(stateDir string, withEnv func(procStat) bool, keep func(procEntry) bool) ([]procEntry, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	r := procReader{dir: int(d.Fd()), buf: make([]byte, 4096)}
	self := os.Getpid()
	var out []procEntry
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		b, err := r.read(name + "/stat")
		if err != nil {
			continue
		}
		st, err := parseStat(b)
		if err != nil || st.zombie() {
			// A zombie has already released its files, locks and
			// mounts; only its parent's wait is missing, and that
			// parent may be an init that reaps slowly.
			continue
		}
		e := procEntry{pid: pid, stat: st}
		if withEnv == nil || withEnv(st) {
			if env, err := r.read(name + "/environ"); err == nil {
				if dir, ok := envLookup(env, EnvStateDir); ok && dir == stateDir {
					e.ours = true
					e.id, _ = envLookup(env, EnvInstanceID)
				}
			}
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// procReader reads small /proc files relative to an open /proc, reusing
// its buffer: what read returns is valid until the next read.
type procReader struct {
	dir int
	buf []byte
}

func (r *procReader) read(name string) ([]byte, error) {
	fd, err := unix.Openat(r.dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}

// threadMountNS names the calling thread's mount namespace
// ("mnt:[4026531841]"). A thread's may differ from its process's (see
// startInMountNS), so /proc/self would not do.
func threadMountNS() string {
	s, _ := os.Readlink("/proc/thread-self/ns/mnt")
	return s
}
