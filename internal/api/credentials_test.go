package api

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialsFiles(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{TokenFile, instanceKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", name, fi.Mode(), err)
		}
	}
	if !tokenText.MatchString(c.AdminToken()) || c.TokenFile != filepath.Join(dir, TokenFile) {
		t.Errorf("admin token %q in %s", c.AdminToken(), c.TokenFile)
	}
	// Kept across restarts: the CLI's token and the instances' credentials
	// stay valid.
	again, err := LoadCredentials(dir)
	if err != nil || again.AdminToken() != c.AdminToken() || again.InstanceToken(petA) != c.InstanceToken(petA) {
		t.Fatalf("reloaded: %v; the credentials changed", err)
	}
	if tok, err := ReadTokenFile(c.TokenFile); err != nil || tok != c.AdminToken() {
		t.Errorf("ReadTokenFile: %q, %v", tok, err)
	}
	// Another state dir is another controller.
	other := testCredentials(t)
	if other.AdminToken() == c.AdminToken() || other.InstanceToken(petA) == c.InstanceToken(petA) {
		t.Error("two controllers share credentials")
	}
}

// TestCredentialsRefused: a secret file that someone else may have read
// or written is not used.
func TestCredentialsRefused(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		wantIn string
	}{
		{"token readable by others", func(t *testing.T, dir string) {
			LoadCredentials(dir)
			os.Chmod(filepath.Join(dir, TokenFile), 0o644)
		}, "chmod 600"},
		{"key writable by the group", func(t *testing.T, dir string) {
			LoadCredentials(dir)
			os.Chmod(filepath.Join(dir, instanceKeyFile), 0o620)
		}, "others could read it"},
		{"token a symlink", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			os.WriteFile(target, []byte("ah_"+strings.Repeat("A", 43)+"\n"), 0o600)
			os.Symlink(target, filepath.Join(dir, TokenFile))
		}, "api-token"},
		{"token not a token", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, TokenFile), []byte("hello\n"), 0o600)
		}, "not a token made by autoheal"},
		{"key too short", func(t *testing.T, dir string) {
			LoadCredentials(dir)
			os.WriteFile(filepath.Join(dir, instanceKeyFile), []byte("short"), 0o600)
		}, "want 32"},
		{"token of another user", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			LoadCredentials(dir)
			os.Chown(filepath.Join(dir, TokenFile), 65534, 65534)
		}, "belongs to uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			if _, err := LoadCredentials(dir); err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("LoadCredentials: %v, want an error naming %q", err, tt.wantIn)
			}
		})
	}
}

func TestInstanceCredential(t *testing.T) {
	c := testCredentials(t)
	tok := c.InstanceToken(petA)
	if !strings.HasPrefix(tok, InstanceTokenPrefix+petA+"_") {
		t.Fatalf("credential %q", tok)
	}
	if id, ok := c.instanceOf(tok); !ok || id != petA {
		t.Fatalf("instanceOf(own) = %q, %v", id, ok)
	}
	mac := strings.TrimPrefix(tok, InstanceTokenPrefix+petA+"_")
	// The same MAC spelled another way: the last character of 32 bytes in
	// base64 carries two unused bits; one flipped.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	respelled := tok[:len(tok)-1] + string(alphabet[strings.IndexByte(alphabet, tok[len(tok)-1])^1])
	for name, presented := range map[string]string{
		"respelled mac":          respelled,
		"another instance's id":  InstanceTokenPrefix + petB + "_" + mac,
		"flipped mac":            tok[:len(tok)-1] + string(tok[len(tok)-1]^1),
		"short mac":              tok[:len(tok)-4],
		"no mac":                 InstanceTokenPrefix + petA + "_",
		"no id":                  InstanceTokenPrefix + "_" + mac,
		"admin prefix":           TokenPrefix + petA + "_" + mac,
		"another controller's":   testCredentials(t).InstanceToken(petA),
		"the admin token":        c.AdminToken(),
		"mac not base64":         InstanceTokenPrefix + petA + "_" + strings.Repeat("!", len(mac)),
		"extra field before mac": InstanceTokenPrefix + petA + "_x_" + mac,
	} {
		if id, ok := c.instanceOf(presented); ok {
			t.Errorf("%s: accepted as %s", name, id)
		}
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := "ah_" + strings.Repeat("x", 43)
	for name, tc := range map[string]struct {
		file, content string
		ok            bool
	}{
		"token":            {TokenFile, good + "\n", true},
		"other name":       {"id_ed25519", good + "\n", false},
		"not a token":      {TokenFile, "-----BEGIN OPENSSH PRIVATE KEY-----\n", false},
		"token and more":   {TokenFile, good + "\nsecond line\n", false},
		"instance prefix":  {TokenFile, "ahi_" + strings.Repeat("x", 42) + "\n", false},
		"token too short":  {TokenFile, good[:len(good)-1] + "\n", false},
		"token too long":   {TokenFile, good + "x\n", false},
		"token with space": {TokenFile, good[:10] + " " + good[11:] + "\n", false},
	} {
		sub := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.MkdirAll(sub, 0o700)
		p := filepath.Join(sub, tc.file)
		os.WriteFile(p, []byte(tc.content), 0o600)
		if tok, err := ReadTokenFile(p); (err == nil) != tc.ok || (tc.ok && tok != good) {
			t.Errorf("%s: %q, %v; want ok %v", name, tok, err, tc.ok)
		}
	}
}

// TestLocalTokenGoesHomeOnly: a token read from a file is sent only to a
// loopback port its owner listens on. A local user who binds the port
// while the controller is down, or a remote address, gets nothing.
func TestLocalTokenGoesHomeOnly(t *testing.T) {
	c := testCredentials(t)
	dir := filepath.Dir(c.TokenFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if tok, err := LocalToken(ln.Addr().String(), dir); err != nil || tok != c.AdminToken() {
		t.Fatalf("own listener: %q, %v", tok, err)
	}
	if tok, err := LocalToken("http://"+ln.Addr().String()+"/", dir); err != nil || tok != c.AdminToken() {
		t.Fatalf("own listener as a URL: %q, %v", tok, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// Another host at the port this user listens on here is still
	// another host.
	for _, addr := range []string{"10.0.0.5:" + port, "example.com:" + port, "127.0.0.1:1"} {
		if tok, err := LocalToken(addr, dir); err == nil {
			t.Errorf("%s: sent %q", addr, tok)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the other-user case needs root (chown)")
	}
	// The file is another user's: this listener (ours) is not its
	// controller.
	if err := os.Chown(c.TokenFile, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if tok, err := LocalToken(ln.Addr().String(), dir); err == nil || !strings.Contains(err.Error(), "held by uid 0") {
		t.Errorf("a port held by another user than the file's: %q, %v", tok, err)
	}
}
