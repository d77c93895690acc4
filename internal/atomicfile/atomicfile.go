package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// step is a point between two steps of a replacement; afterStep, if set,
// is called at each. Tests set it to kill a writer there.
type step string

const (
	stepCreated   step = "created"    // the temporary file exists, empty
	stepWritten   step = "written"    // the content is in it
	stepSynced    step = "synced"     // fsynced (durable only)
	stepClosed    step = "closed"     // closed
	stepRenamed   step = "renamed"    // renamed over the target
	stepDirSynced step = "dir-synced" // the directory fsynced (durable only)
)

var afterStep func(step)

// syncFile is fsync; tests record its calls.
var syncFile = (*os.File).Sync

func at(s step) {
	if afterStep != nil {
		afterStep(s)
	}
}

// WriteFile replaces path with data, durably: temporary file in the same
// directory, write, fsync, rename over path, fsync of the directory. The
// file gets mode perm exactly (no umask).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return replace(path, perm, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write is WriteFile for content that write streams into the temporary
// file. If write fails, path is left as it was.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	return replace(path, perm, true, write)
}

// WriteFileNoSync replaces path with data atomically but without fsync:
// readers, and anyone after the writer was killed, see the old content or
// the new. A power loss or kernel crash can lose the replacement, or leave
// path empty or zero-filled (the rename may reach the disk before the
// data). Use it only where such a crash makes the record moot and the
// caller says why.
func WriteFileNoSync(path string, data []byte, perm os.FileMode) error {
	return replace(path, perm, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func replace(path string, perm os.FileMode, durable bool, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// In the same directory: a rename across filesystems is not atomic.
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	at(stepCreated)
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := write(f); err != nil {
		return fail(err)
	}
	at(stepWritten)
	if durable {
		// Before the rename: otherwise a crash could leave the new name
		// on the old (empty) blocks.
		if err := syncFile(f); err != nil {
			return fail(err)
		}
		at(stepSynced)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	at(stepClosed)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	at(stepRenamed)
	if !durable {
		return nil
	}
	// The rename is a change to the directory: durable once it is synced.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("replace %s: sync dir: %w", path, err)
	}
	defer d.Close()
	if err := syncFile(d); err != nil {
		return fmt.Errorf("replace %s: sync dir: %w", path, err)
	}
	at(stepDirSynced)
	return nil
}
