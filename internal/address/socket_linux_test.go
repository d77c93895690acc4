package address

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoheal/autoheal/internal/testutil"
)

// The test binary doubles as the instance of socket-mode tests: with this
// variable set it serves the listener inherited as fd 3, answering every
// connection with its pid.
const childEnv = "AUTOHEAL_ADDRESS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "serve" {
		serveInherited()
		return
	}
	os.Exit(m.Run())
}

func serveInherited() {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	pid := strconv.Itoa(os.Getpid())
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(3)
		}
		io.WriteString(c, pid+"\n")
		c.Close()
	}
}

// startInstance starts a child serving s, as the local provider would.
func startInstance(t *testing.T, s *Socket) *exec.Cmd {
	t.Helper()
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy once started
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=serve")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestSocketHandoverRefusesNothing(t *testing.T) {
	s, err := ListenSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr().String()

	var (
		mu       sync.Mutex
		byPid    = map[string]int{}
		refused  int
		dialErrs []error
		lost     int // accepted by the killed instance, never answered
	)
	served := func(pid int) int {
		mu.Lock()
		defer mu.Unlock()
		return byPid[strconv.Itoa(pid)]
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					mu.Lock()
					if errors.Is(err, syscall.ECONNREFUSED) {
						refused++
					} else {
						dialErrs = append(dialErrs, err)
					}
					mu.Unlock()
					continue
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				c.Close()
				mu.Lock()
				if err != nil {
					lost++
				} else {
					byPid[strings.TrimSpace(line)]++
				}
				mu.Unlock()
			}
		})
	}
	// allQueued waits until every client has a connection in the backlog
	// and nobody accepts them: the kernel, not a sleep, says they arrived
	// while no instance was there.
	allQueued := func(when string) {
		t.Helper()
		testutil.WaitFor(t, testutil.Timeout, "the 4 clients to queue in the backlog "+when, func() bool {
			n, err := testutil.Backlog(s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			return n == 4
		})
	}

	// The clients start before any instance: they queue in the backlog.
	allQueued("before the first instance")
	first := startInstance(t, s)
	testutil.WaitFor(t, testutil.Timeout, "the first instance to serve", func() bool { return served(first.Process.Pid) >= 20 })

	first.Process.Kill()
	first.Wait()
	// No instance at all, as during a replacement, until the clients
	// whose connection died with the first instance have connected again.
	allQueued("between the instances")
	second := startInstance(t, s)
	testutil.WaitFor(t, testutil.Timeout, "the second instance to serve", func() bool { return served(second.Process.Pid) >= 20 })
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("served %v; lost in flight at the kill: %d", byPid, lost)
	if refused != 0 || len(dialErrs) != 0 {
		t.Fatalf("%d connections refused, dial errors %v", refused, dialErrs)
	}
	if lost > 4 {
		// At most one connection per client can be inside the killed
		// instance when it dies.
		t.Fatalf("%d connections lost, want at most 4", lost)
	}
}

func TestSocketFileIsBlocking(t *testing.T) {
	s, err := ListenSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f1, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	// A previous instance written in Go sets O_NONBLOCK on the description.
	if err := unix.SetNonblock(int(f1.Fd()), true); err != nil {
		t.Fatal(err)
	}
	f2, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	fl, err := unix.FcntlInt(f2.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Fatal("the next instance would get a non-blocking socket")
	}
}

func TestRecoverListener(t *testing.T) {
	s, err := ListenSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	f.Close()
	// The controller restarts: only the instance holds the socket now.
	s.Close()

	rf, err := RecoverListener(cmd.Process.Pid, 3)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("pidfd_getfd not available here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SocketFromFile(rf)
	rf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Addr().String() != addr {
		t.Fatalf("recovered %s, want %s", s2.Addr(), addr)
	}
	if err := s2.Verify(addr); err != nil {
		t.Fatal(err)
	}

	// It is the very socket: a connection made now is accepted through it.
	lf, err := s2.File()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ac.Close()

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name    string
			pid, fd int
			want    error // from RecoverListener, or nil to check SocketFromFile
		}{
			{"fd not open", cmd.Process.Pid, 99, unix.EBADF},
			{"no such process", 1 << 30, 3, unix.ESRCH},
			{"not a socket", cmd.Process.Pid, 0, nil}, // stdin is /dev/null
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f, err := RecoverListener(tt.pid, tt.fd)
				if tt.want != nil {
					if !errors.Is(err, tt.want) {
						t.Fatalf("err %v, want %v", err, tt.want)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := SocketFromFile(f); !errors.Is(err, ErrNotListening) {
					t.Fatalf("err %v, want ErrNotListening", err)
				}
			})
		}
	})
}

func TestSocketFromFileRejects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	unixLn, err := net.Listen("unix", t.TempDir()+"/sock")
	if err != nil {
		t.Fatal(err)
	}
	defer unixLn.Close()
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()

	file := func(v interface{ File() (*os.File, error) }) *os.File {
		f, err := v.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	tests := []struct {
		name string
		f    *os.File
	}{
		{"connected tcp socket", file(conn.(*net.TCPConn))},
		{"udp socket", file(udp.(*net.UDPConn))},
		{"unix listener", file(unixLn.(*net.UnixListener))},
		{"pipe", pipeR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SocketFromFile(tt.f); !errors.Is(err, ErrNotListening) {
				t.Fatalf("err %v, want ErrNotListening", err)
			}
		})
	}
	t.Run("tcp listener is accepted and left open for the caller", func(t *testing.T) {
		f := file(ln.(*net.TCPListener))
		s, err := SocketFromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := f.Stat(); err != nil {
			t.Fatalf("caller's file closed: %v", err)
		}
	})
}

func TestSocketVerify(t *testing.T) {
	loop, err := ListenSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	port := loop.Addr().(*net.TCPAddr).Port
	any, err := ListenSocket(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer any.Close()
	anyPort := any.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name   string
		s      *Socket
		listen string
		ok     bool
	}{
		{"same", loop, fmt.Sprintf("127.0.0.1:%d", port), true},
		{"by name", loop, fmt.Sprintf("localhost:%d", port), true},
		{"port 0 means any port", loop, "127.0.0.1:0", true},
		{"other port", loop, fmt.Sprintf("127.0.0.1:%d", port+1), false},
		{"other ip", loop, fmt.Sprintf("127.0.0.2:%d", port), false},
		{"wildcard wanted, loopback bound", loop, fmt.Sprintf(":%d", port), false},
		{"wildcard", any, fmt.Sprintf(":%d", anyPort), true},
		{"ipv4 wildcard", any, fmt.Sprintf("0.0.0.0:%d", anyPort), true},
		{"unparsable", loop, "nonsense", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Verify(tt.listen); (err == nil) != tt.ok {
				t.Fatalf("Verify(%q) on %s = %v, want ok %v", tt.listen, tt.s.Addr(), err, tt.ok)
			}
		})
	}
}

func TestListenSocketTaken(t *testing.T) {
	s, err := ListenSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := ListenSocket(s.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err %v, want EADDRINUSE", err)
	}
}
