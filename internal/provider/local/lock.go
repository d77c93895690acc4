//go:build linux

package local

import (
	"errors"
	"fmt"
	"os"

	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/volume"
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
			if err := volume.CheckToken(l.TokenFile, l.Token); err != nil {
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
