package awsapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	good := "# keys\n[ci]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = secret0123456789abcdef\nautoheal_role = operator\nregion = us-east-1\n\n[ro]\naws_access_key_id=AKIAEXAMPLE0000002\naws_secret_access_key=secret0123456789abcdeg\nautoheal_role=viewer\n"
	keys, err := ParseKeys("f", good)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != (Key{Name: "ci", ID: "AKIAEXAMPLE0000001", Secret: "secret0123456789abcdef", Role: "operator"}) || keys[1].Role != "viewer" {
		t.Fatalf("got %+v", keys)
	}
	bad := []struct{ text, want string }{
		{"aws_access_key_id = AKIAEXAMPLE0000001\n", "f:1: expected [PROFILE]"},
		{"[a\n", "f:1: \"[a\": a profile line"},
		{"[a]\naws_secret_access_key = secret0123456789abcdef\nautoheal_role = admin\n", "f:1: profile [a] has no aws_access_key_id"},
		{"[a]\naws_access_key_id = AKIAEXAMPLE0000001\nautoheal_role = admin\n", "has no aws_secret_access_key"},
		{"[a]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = short\nautoheal_role = admin\n", "shorter than 16"},
		{"[a]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = secret0123456789abcdef\nautoheal_role = root\n", `autoheal_role "root"`},
		{"[a]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = secret0123456789abcdef\n", `autoheal_role ""`},
		{"[a]\naws_access_key_id = akia-lower\n", "f:2: aws_access_key_id"},
		{"[a]\naws_access_key_id = ASIA0123456789ABCDE\naws_secret_access_key = secret0123456789abcdef\nautoheal_role = admin\n", "instances'"},
		{"[a]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = secret0123456789abcdef\nautoheal_role = admin\n[b]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = secret0123456789abcdeX\nautoheal_role = admin\n", "f:5: profile [b]: access key AKIAEXAMPLE0000001 is also profile [a]"},
	}
	for _, c := range bad {
		_, err := ParseKeys("f", c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.text, err, c.want)
		}
	}
}

// The keys file must be the controller's own and private.
func TestLoadKeysNeedsPrivateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys")
	text := "[a]\naws_access_key_id = AKIAEXAMPLE0000001\naws_secret_access_key = secret0123456789abcdef\nautoheal_role = admin\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable keys file: %v", err)
	}
	os.Chmod(p, 0o600)
	if keys, err := LoadKeys(p); err != nil || len(keys) != 1 {
		t.Fatalf("a private keys file: %v %v", keys, err)
	}
	if _, err := LoadKeys(p + ".missing"); err == nil || !strings.Contains(err.Error(), "api.aws_credentials_file") {
		t.Fatalf("a missing keys file: %v", err)
	}
}
