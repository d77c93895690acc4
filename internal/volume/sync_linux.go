package volume

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the filesystem that holds dir: syncfs(2) covers every file
// an init script wrote, which fsyncing single files could not.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
