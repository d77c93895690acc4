package testutil

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestHosts are "hosts" made for one test on this machine: network
// namespaces, each with one interface on a bridge in the root namespace,
// in a /24 of 10.250.0.0/15 picked at random. The test process reaches
// every host through the bridge (its address is .254); a host's processes
// run in its namespace (Command). Everything is removed at the test's
// end. Only addresses inside these namespaces are used.
type TestHosts struct {
	t      testing.TB
	bridge string
	Subnet string // "10.250.7" (no last octet)
	Hosts  []*TestHost
}

// TestHost is one host: its namespace, its address, and the root side of
// its link (LinkDown cuts it off the others).
type TestHost struct {
	Name string
	NS   string
	Addr string
	peer string // the veth end on the bridge
}

// MakeHosts makes n hosts. It needs root (skipped without, with the
// reason) and iproute2 (skipped without, or failed with
// AUTOHEAL_REQUIRE_TOOLS).
func MakeHosts(t testing.TB, n int) *TestHosts {
	t.Helper()
	if os.Geteuid() != 0 {
		// Not a missing tool: the whole suite's fence tests need root too.
		t.Skip("network namespaces need root: run the tests as root (test.sh does in CI)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "ip (iproute2) not found")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%02x%02x", b[0], b[1])
	th := &TestHosts{t: t, bridge: "ah" + id + "b", Subnet: fmt.Sprintf("10.%d.%d", 250+int(b[2])%2, b[1])}
	t.Cleanup(th.remove)
	th.ip("link", "add", th.bridge, "type", "bridge")
	th.ip("addr", "add", th.Subnet+".254/24", "dev", th.bridge)
	th.ip("link", "set", th.bridge, "up")
	for i := range n {
		h := &TestHost{
			Name: "h" + strconv.Itoa(i+1),
			NS:   "ah" + id + "n" + strconv.Itoa(i+1),
			Addr: th.Subnet + "." + strconv.Itoa(i+1),
			peer: "ah" + id + "v" + strconv.Itoa(i+1),
		}
		th.Hosts = append(th.Hosts, h)
		th.ip("netns", "add", h.NS)
		th.ip("link", "add", h.peer, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		th.ip("link", "set", h.peer, "master", th.bridge, "up")
		th.ip("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", "eth0")
		th.ip("-n", h.NS, "link", "set", "eth0", "up")
		th.ip("-n", h.NS, "link", "set", "lo", "up")
	}
	return th
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("AUTOHEAL_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s, and AUTOHEAL_REQUIRE_TOOLS is set", why)
	}
	t.Skipf("%s: this test makes hosts as network namespaces", why)
}

func (th *TestHosts) ip(args ...string) {
	th.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		th.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// remove kills every process left in the hosts and removes them and the
// bridge.
func (th *TestHosts) remove() {
	for _, h := range th.Hosts {
		h.KillAll()
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "link", "del", th.bridge).Run()
}

// Command is a command to run on host h (in its namespace). It dies with
// the test process.
func (h *TestHost) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// LinkDown cuts the host off the others (its processes go on); LinkUp
// heals the partition.
func (h *TestHost) LinkDown() error { return exec.Command("ip", "link", "set", h.peer, "down").Run() }

// LinkUp puts the host back on the bridge.
func (h *TestHost) LinkUp() error { return exec.Command("ip", "link", "set", h.peer, "up").Run() }

// Crash ends the host as a machine that died: every process SIGKILLed,
// its link cut.
func (h *TestHost) Crash() error {
	h.KillAll()
	return h.LinkDown()
}

// KillAll SIGKILLs every process running in the host's namespace, as the
// host's crash would end them.
func (h *TestHost) KillAll() {
	out, err := exec.Command("ip", "netns", "pids", h.NS).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
