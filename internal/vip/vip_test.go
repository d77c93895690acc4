package vip

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/testutil"
)

func TestMain(m *testing.M) {
	// The test binary serves as the holder, as autoheal's binary does.
	if Init() {
		return
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "10.0.0.100/24", want: "10.0.0.100/24"},
		{in: "10.0.0.100/24@eth0", want: "10.0.0.100/24@eth0"},
		{in: "10.0.0.100", err: "prefix length"},
		{in: "fd00::1/64", err: "only IPv4"},
		{in: "eth0", err: "prefix length"},
	} {
		a, err := Parse(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q) = %v, %v; want error with %q", tc.in, a, err, tc.err)
		case tc.err == "" && (err != nil || a.String() != tc.want):
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.in, a, err, tc.want)
		}
	}
}

// TestGARP: the announcement is an ARP request whose sender and target
// protocol addresses are both the virtual IP, from the interface's
// hardware address (RFC 5227's announcement; what Linux takes as
// gratuitous and lets override a neighbour entry).
func TestGARP(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	got := garp(mac, netip.MustParseAddr("10.1.2.3"))
	want := []byte{
		0, 1, 8, 0, 6, 4, 0, 1, // Ethernet, IPv4, lengths, request
		2, 0, 0, 0, 0, 1, 10, 1, 2, 3, // sender: mac, ip
		0, 0, 0, 0, 0, 0, 10, 1, 2, 3, // target: none, the same ip
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("garp = % x\nwant   % x", got, want)
	}
}

// TestHolderMovesTheAddress: two hosts on a bridge, the test process
// beside them as a client. A holder on h1 adds the virtual IP; the client
// talks to it (its neighbour entry has h1's hardware address). Removing
// h1's deadline file makes its holder remove the address (a fenced host);
// a holder on h2 adds it and announces it, and the client's entry turns
// to h2's hardware address at once, without waiting for it to expire (30
// s or more), which is what the gratuitous ARP is for.
func TestHolderMovesTheAddress(t *testing.T) {
	bed := testutil.MakeHosts(t, 2)
	h1, h2 := bed.Hosts[0], bed.Hosts[1]
	addr := bed.Subnet + ".200"
	a := addr + "/24"
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hold := func(h *testutil.TestHost, deadline time.Duration) (string, *exec.Cmd) {
		file := filepath.Join(dir, h.Name+"-deadline")
		if err := local.WriteDeadline(file, time.Now().Add(deadline)); err != nil {
			t.Fatal(err)
		}
		cmd := h.Command(exe, holdArg, filepath.Join(dir, h.Name+".lock"), file, a)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return file, cmd
	}
	held := func(h *testutil.TestHost) bool {
		out, _ := exec.Command("ip", "-n", h.NS, "-4", "addr", "show", "dev", "eth0").Output()
		return strings.Contains(string(out), " "+a+" ")
	}
	mac := func(h *testutil.TestHost) string {
		out, err := exec.Command("ip", "-n", h.NS, "-o", "link", "show", "eth0").Output()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(out))
		for i := range f {
			if f[i] == "link/ether" {
				return f[i+1]
			}
		}
		t.Fatalf("no hardware address in %s", out)
		return ""
	}
	neighbour := func() string {
		out, _ := exec.Command("ip", "neigh", "show", "to", addr).Output()
		f := strings.Fields(string(out))
		for i := range f {
			if f[i] == "lladdr" {
				return f[i+1]
			}
		}
		return ""
	}

	// A holder whose deadline has passed does not add the address.
	_, late := hold(h1, -time.Second)
	if err := late.Wait(); err != nil || held(h1) {
		t.Fatalf("a holder with a passed deadline: exit %v, address held %v", err, held(h1))
	}

	d1, c1 := hold(h1, time.Minute)
	testutil.WaitFor(t, 10*time.Second, "h1 to hold the address", func() bool { return held(h1) })
	testutil.WaitFor(t, 10*time.Second, "the address to answer from h1", func() bool {
		// Any packet makes the client resolve the address; the refused
		// connection is h1's kernel answering.
		if c, err := net.DialTimeout("tcp", addr+":9", 200*time.Millisecond); err == nil {
			c.Close()
		}
		return neighbour() == mac(h1)
	})
	// A controller restarted on the same lease finds its holder.
	if got := heldFor(filepath.Join(dir, "h1.lock")); got != d1 {
		t.Fatalf("heldFor = %q while h1's holder runs, want %q", got, d1)
	}
	// SIGTERM does not release it (a controller stopping for an upgrade
	// leaves its addresses): only the deadline does.
	c1.Process.Signal(os.Interrupt)
	if err := os.Remove(d1); err != nil {
		t.Fatal(err)
	}
	if err := c1.Wait(); err != nil {
		t.Fatalf("h1's holder: %v", err)
	}
	if held(h1) {
		t.Fatal("h1 still holds the address after its deadline file was removed")
	}
	if got := heldFor(filepath.Join(dir, "h1.lock")); got != "" {
		t.Fatalf("heldFor = %q after h1's holder left", got)
	}
	hold(h2, time.Minute)
	testutil.WaitFor(t, 2*time.Second, "the client's neighbour entry to turn to h2 (gratuitous ARP)", func() bool {
		return neighbour() == mac(h2)
	})
	if !held(h2) {
		t.Fatal("h2 does not hold the address")
	}
}
