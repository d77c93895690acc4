package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// The controller's own credentials, like an EC2 instance profile: a local
// admin token that whoever can read the state dir uses (the operator on
// the host, through the CLI), and per instance a credential derived from
// the instance's id, handed to it in AUTOHEAL_INSTANCE_TOKEN, that lets it
// do only what an instance needs unless its group is granted a role.
// Neither is ever accepted from a file the controller did not write
// itself, and both files are readable by the controller's user only: an
// instance running as another user (launch.user) cannot read them.

// Files in the state dir.
const (
	// TokenFile holds the local admin token, one line.
	TokenFile = "api-token"
	// instanceKeyFile holds the key instance credentials are derived
	// from: 32 random bytes.
	instanceKeyFile = "api-instance-key"
)

// Token prefixes: "ah_" for API tokens (the local admin token and those
// of auth.tokens), "ahi_" for instance credentials.
const (
	TokenPrefix         = "ah_"
	InstanceTokenPrefix = "ahi_"
)

// InstanceTokenEnv is the variable an instance finds its credential in.
const InstanceTokenEnv = "AUTOHEAL_INSTANCE_TOKEN"

// localAdmin names the local admin token in audit events.
const localAdmin = "local-admin"

// tokenText is what a token made by NewToken looks like; a file that holds
// anything else is not taken as a token (see ReadTokenFile).
var tokenText = regexp.MustCompile(`^ah_[A-Za-z0-9_-]{43}$`)

// NewToken returns a fresh random API token: "ah_" and 32 random bytes in
// unpadded base64url.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Credentials are the controller's local admin token and instance key.
type Credentials struct {
	admin []byte
	key   []byte
	// TokenFile is where the admin token is kept.
	TokenFile string
}

// LoadCredentials reads the credentials from the state dir, creating each
// file that is missing (mode 0600, kept across restarts). A file that is
// not the controller's user's, or that others may read or write, is
// refused: its secret may be known to someone else. The caller has made
// the state dir.
func LoadCredentials(stateDir string) (*Credentials, error) {
	c := &Credentials{TokenFile: filepath.Join(stateDir, TokenFile)}
	tok, err := loadSecret(c.TokenFile, func() ([]byte, error) {
		t, err := NewToken()
		return []byte(t + "\n"), err
	})
	if err != nil {
		return nil, err
	}
	c.admin = []byte(strings.TrimSpace(string(tok)))
	if !tokenText.Match(c.admin) {
		return nil, fmt.Errorf("api token %s: not a token made by autoheal; remove the file and restart to make a new one", c.TokenFile)
	}
	c.key, err = loadSecret(filepath.Join(stateDir, instanceKeyFile), func() ([]byte, error) {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	})
	if err != nil {
		return nil, err
	}
	if len(c.key) < 32 {
		return nil, fmt.Errorf("api instance key %s: %d bytes, want 32; remove the file and restart to make a new one (instances get new credentials when relaunched)", filepath.Join(stateDir, instanceKeyFile), len(c.key))
	}
	return c, nil
}

// loadSecret reads a secret file, or creates it with gen's bytes when it
// does not exist. Creation is exclusive (O_EXCL) so that two controllers
// racing on a new state dir cannot each believe their own secret.
func loadSecret(path string, gen func() ([]byte, error)) ([]byte, error) {
	b, err := ReadPrivate(path, 4096)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	secret, err := gen()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ReadPrivate(path, 4096)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.Write(secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return secret, nil
}

// ReadPrivate reads a file of at most max bytes that must be a regular
// file of this process's user that nobody else may read or write.
func ReadPrivate(path string, max int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s belongs to uid %d, not to this controller's (%d): remove it and restart", path, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %#o: others could read it; chmod 600 it (or remove it and restart)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s is over %d bytes", path, max)
	}
	return b, nil
}

// AdminToken returns the local admin token.
func (c *Credentials) AdminToken() string { return string(c.admin) }

// isAdmin reports whether presented is the local admin token, in constant
// time.
func (c *Credentials) isAdmin(presented string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), c.admin) == 1
}

// InstanceToken returns the credential of an instance: "ahi_", its id, "_"
// and an HMAC-SHA256 of the id under the instance key. Nothing per
// instance is stored: the API recomputes it.
func (c *Credentials) InstanceToken(id string) string {
	return InstanceTokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(c.instanceMAC(id))
}

func (c *Credentials) instanceMAC(id string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("autoheal instance credential v1\x00"))
	m.Write([]byte(id))
	return m.Sum(nil)
}

// instanceOf returns the instance a presented instance credential is
// for, when it is one this controller made.
func (c *Credentials) instanceOf(presented string) (string, bool) {
	rest, ok := strings.CutPrefix(presented, InstanceTokenPrefix)
	if !ok {
		return "", false
	}
	// Instance ids have no '_'; the MAC, in base64url, may.
	id, mac, ok := strings.Cut(rest, "_")
	if !ok || id == "" {
		return "", false
	}
	// Strict: the last character's unused bits must be zero, so that one
	// credential has one spelling.
	got, err := base64.RawURLEncoding.Strict().DecodeString(mac)
	if err != nil || !hmac.Equal(got, c.instanceMAC(id)) {
		return "", false
	}
	return id, true
}

// ReadTokenFile reads a local admin token file as a client does: it must
// hold one token made by autoheal and nothing else, so that a file that
// is not a token is never sent anywhere as one.
func ReadTokenFile(path string) (string, error) {
	if filepath.Base(path) != TokenFile {
		return "", fmt.Errorf("%s is not an autoheal token file (%s)", path, TokenFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 128)
	n, err := f.Read(b)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(b[:n]))
	if !tokenText.MatchString(tok) {
		return "", fmt.Errorf("%s does not hold an autoheal token", path)
	}
	return tok, nil
}

// InstanceAWSKeyPrefix starts the access key id of an instance's AWS
// credentials: "ASIA" (AWS's prefix for temporary keys) and its id's 17
// hex digits in capitals.
const InstanceAWSKeyPrefix = "ASIA"

// InstanceAWSKey returns an instance's AWS credentials, served by its
// metadata service when its group has a role: an access key id that names
// it, a secret derived from the instance key, and its credential as the
// session token. Like the credential, nothing is stored.
func (c *Credentials) InstanceAWSKey(id string) (keyID, secret, session string) {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("autoheal instance aws secret v1\x00"))
	m.Write([]byte(id))
	return InstanceAWSKeyPrefix + strings.ToUpper(strings.TrimPrefix(id, "i-")),
		base64.RawURLEncoding.EncodeToString(m.Sum(nil)), c.InstanceToken(id)
}

// InstanceOfAWSKey returns the instance an instance's access key id names
// and that instance's credentials.
func (c *Credentials) InstanceOfAWSKey(keyID string) (id, secret, session string, ok bool) {
	hexID, found := strings.CutPrefix(keyID, InstanceAWSKeyPrefix)
	if !found || len(hexID) != 17 || strings.ToUpper(hexID) != hexID {
		return "", "", "", false
	}
	id = "i-" + strings.ToLower(hexID)
	_, secret, session = c.InstanceAWSKey(id)
	return id, secret, session, true
}

// IMDSKey is the path key of an instance's metadata service: whoever
// knows it reads the instance's metadata (and, when its group has a role,
// its AWS credentials), so it is handed to the instance only, in its
// environment, and is not its API credential.
func (c *Credentials) IMDSKey(id string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("autoheal instance metadata v1\x00"))
	m.Write([]byte(id))
	return id + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// InstanceOfIMDSKey returns the instance a metadata path key is for.
func (c *Credentials) InstanceOfIMDSKey(key string) (string, bool) {
	id, _, ok := strings.Cut(key, ".")
	if !ok || subtle.ConstantTimeCompare([]byte(key), []byte(c.IMDSKey(id))) != 1 {
		return "", false
	}
	return id, true
}
