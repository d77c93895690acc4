//go:build linux

package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/volume"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want procStat
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194560 120 0 0 0 0 0 0 0 20 0 1 0 987654 2211840 128 18446744073709551615",
			procStat{State: 'S', Ppid: 1, Pgid: 42, Start: 987654}},
		// The command name may hold spaces and parentheses.
		{"7 (a) b (c)) Z 3 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 11 0 0 0",
			procStat{State: 'Z', Ppid: 3, Pgid: 5, Start: 11}},
	} {
		got, err := parseStat([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestEnvLookup(t *testing.T) {
	env := []byte("A=1\x00AUTOHEAL_STATE_DIR_X=no\x00AUTOHEAL_STATE_DIR=/s\x00EMPTY=\x00LAST=z")
	for key, want := range map[string]string{"AUTOHEAL_STATE_DIR": "/s", "A": "1", "EMPTY": "", "LAST": "z"} {
		if got, ok := envLookup(env, key); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", key, got, ok, want)
		}
	}
	for _, key := range []string{"AUTOHEAL", "B", "AUTOHEAL_STATE"} {
		if got, ok := envLookup(env, key); ok {
			t.Errorf("%s found: %q", key, got)
		}
	}
}

func TestRotatorKeepsNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	r, err := openRotator(path, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("0123456789abcdef"))
	r.Close()
	if b, _ := os.ReadFile(path); string(b) != "abcdef" {
		t.Fatalf("current %q", b)
	}
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Fatalf("rotated file kept: %v", err)
	}
	// Reopening appends and counts what is there.
	r, _ = openRotator(path, 10, 1)
	r.Write([]byte("0123"))
	r.Write([]byte("XY"))
	r.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(old) != "abcdef0123" || string(cur) != "XY" {
		t.Fatalf("old %q current %q", old, cur)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	for i := 0; i < 10; i++ {
		b.Write([]byte("0123456789"))
	}
	if got := b.String(); got != "23456789" {
		t.Fatalf("tail %q", got)
	}
	// Never starts inside a UTF-8 sequence.
	b = &tailBuffer{max: 4}
	b.Write([]byte("ééé"))
	if got := b.String(); got != "éé" {
		t.Fatalf("tail %q", got)
	}
}

func TestCheckToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := volume.CheckToken(path, 3); err != nil { // no file yet: token 0
		t.Fatal(err)
	}
	if err := volume.CheckToken(path, 3); err != nil { // same token: the same holder again
		t.Fatal(err)
	}
	if err := volume.CheckToken(path, 2); err == nil || !strings.Contains(err.Error(), "token 2 is stale") {
		t.Fatalf("older token: %v", err)
	}
	if err := volume.CheckToken(path, 4); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "4\n" {
		t.Fatalf("token file %q", b)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if err := volume.CheckToken(path, 9); err == nil {
		t.Fatal("unparsable token accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func TestResolveUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("resolving other users is refused without root")
	}
	for _, tc := range []struct {
		in       string
		uid, gid uint32
	}{
		{"nobody", 65534, 65534},
		{"65534", 65534, 65534},
		{"4242", 4242, 4242}, // no passwd entry: its own group, not root's
		{"4242:100", 4242, 100},
		{"nobody:root", 65534, 0},
	} {
		c, err := resolveUser(tc.in)
		if err != nil || c == nil || c.Uid != tc.uid || c.Gid != tc.gid {
			t.Errorf("resolveUser(%q) = %+v, %v", tc.in, c, err)
		}
	}
	if _, err := resolveUser("no-such-user-here"); err == nil {
		t.Error("unknown user resolved")
	}
	if c, err := resolveUser(""); c != nil || err != nil {
		t.Errorf("empty user: %+v %v", c, err)
	}
}
