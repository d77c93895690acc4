//go:build linux

package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/autoheal/autoheal/internal/provider"
	"golang.org/x/sys/unix"
)

// takeLocks opens and flocks every volume lock, then checks and records its
// fencing token. The returned files hold the locks: flock belongs to the
// open file description, so the application, which inherits the
// descriptors, keeps the locks for as long as it or any descendant lives,
// even if the shim dies. On error every lock taken so far is released.
func takeLocks(locks []provider.Lock) ([]*os.File, error) {
	var files []*os.File
	release := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, l := range locks {
		f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			release()
			return nil, fmt.Errorf("volume lock %s: %w", l.Path, err)
		}
		files = append(files, f)
		if err := flock(f); err != nil {
			release()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("volume lock %s held by another process", l.Path)
			}
			return nil, fmt.Errorf("volume lock %s: %w", l.Path, err)
		}
		if l.TokenFile != "" {
			if err := checkToken(l.TokenFile, l.Token); err != nil {
				release()
				return nil, err
			}
		}
	}
	return files, nil
}

func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// checkToken is the fencing check: a holder whose token is older than the
// one recorded on the volume has been superseded and must never run. A
// missing or empty file counts as token 0. The new token is written
// durably before the application may touch the volume.
func checkToken(path string, token int64) error {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("fencing token %s: %w", path, err)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		cur, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("fencing token %s: %w", path, err)
		}
		if cur > token {
			return fmt.Errorf("stale fencing token %d: %s already holds %d", token, path, cur)
		}
		if cur == token {
			return nil
		}
	}
	if err := writeFileDurable(path, []byte(strconv.FormatInt(token, 10)+"\n")); err != nil {
		return fmt.Errorf("fencing token %s: %w", path, err)
	}
	return nil
}

// writeFileDurable replaces path atomically and durably, directory entry
// included: the fencing token must survive a crash.
func writeFileDurable(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
