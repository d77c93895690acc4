package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	counterFile = "counter"
	logFile     = "writes.log"

	// maxPayload is the largest payload /write accepts.
	maxPayload = 64 << 10
	// maxLine bounds what /verify and /writes read as one line. A valid line
	// is at most ~64KiB; anything much longer is corruption (lost newlines),
	// and reading it whole would only waste memory.
	maxLine = 1 << 20
)

// castagnoli is CRC-32C, the checksum of every log line (hardware-accelerated
// on amd64 and arm64, so verifying a large log stays cheap).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// store is the pet's durable state in its data directory:
//
//	counter     the counter, in decimal, replaced atomically on every change
//	writes.log  append-only, one line per write:
//	            seq TAB unix_nano TAB payload TAB crc32c-hex(the preceding bytes) LF
//
// Every change is on disk (fsync'd) before the method reporting it returns,
// so a SIGKILL or power loss never loses an acknowledged write.
type store struct {
	dir  string
	dirf *os.File // the directory, kept open to fsync renames and creations
	log  *os.File // writes.log, O_APPEND, flock'ed while we live

	mu      sync.Mutex // serializes mutations; guards the fields below
	counter int64
	lines   int64 // complete lines in writes.log == seq of the last write
	size    int64 // bytes of complete lines: readers never look past it
	broken  error // set when the log is in an unknown state; writes refuse until a restart
}

// startInfo tells the start-up line what openStore found and fixed.
type startInfo struct {
	created  bool  // writes.log did not exist
	tornCut  int64 // bytes of a torn last line cut from writes.log
	lines    int64
	counter  int64
	logBytes int64
}

// openStore opens (and repairs) the data in dir, which must exist: a missing
// volume directory is an error, not something to create, or the pet would
// quietly start afresh on the wrong disk.
func openStore(dir string) (*store, startInfo, error) {
	var info startInfo
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, info, fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, info, fmt.Errorf("data directory %s is not a directory", dir)
	}
	s := &store{dir: dir}
	if s.dirf, err = os.Open(dir); err != nil {
		return nil, info, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, logFile)
	_, err = os.Lstat(path)
	info.created = errors.Is(err, os.ErrNotExist)
	s.log, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.close()
		return nil, info, err
	}
	// One writer per volume. autoheal fences the previous instance before it
	// starts the next, so this never blocks in normal operation; if fencing
	// ever failed, two pets appending to one log would corrupt it, so refuse
	// loudly instead. The kernel drops the lock when the process dies.
	if err := syscall.Flock(int(s.log.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		s.close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, info, fmt.Errorf("%s is locked by another live process: refusing to share the data directory", path)
		}
		return nil, info, fmt.Errorf("lock %s: %w", path, err)
	}
	if info.created {
		// Make the new file's directory entry durable too.
		if err := s.dirf.Sync(); err != nil {
			s.close()
			return nil, info, fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	if err := s.recoverLog(&info); err != nil {
		s.close()
		return nil, info, err
	}
	if err := s.readCounter(); err != nil {
		s.close()
		return nil, info, err
	}
	info.lines, info.counter, info.logBytes = s.lines, s.counter, s.size
	return s, info, nil
}

// recoverLog counts the complete lines of writes.log and cuts a torn last
// line: the bytes after the last newline are what a crash in the middle of
// an append leaves, and that write was never acknowledged. Checksums are not
// checked here (that is /verify's job), which keeps start-up to one
// sequential read.
func (s *store) recoverLog(info *startInfo) error {
	buf := make([]byte, 256<<10)
	var off, good, lines int64
	for {
		n, err := s.log.ReadAt(buf, off)
		chunk := buf[:n]
		lines += int64(bytes.Count(chunk, []byte{'\n'}))
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			good = off + int64(i) + 1
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", s.log.Name(), err)
		}
	}
	if off > good {
		if err := s.log.Truncate(good); err != nil {
			return fmt.Errorf("cut the torn last line of %s: %w", s.log.Name(), err)
		}
		if err := s.log.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", s.log.Name(), err)
		}
		info.tornCut = off - good
	}
	s.lines, s.size = lines, good
	return nil
}

func (s *store) readCounter() error {
	b, err := os.ReadFile(filepath.Join(s.dir, counterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new volume
	}
	if err != nil {
		return err
	}
	// The file is only ever replaced by rename, so it is never half-written:
	// anything unparsable is real damage and must not be reset to zero.
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("%s is damaged: %w", filepath.Join(s.dir, counterFile), err)
	}
	s.counter = n
	return nil
}

func (s *store) close() {
	if s.log != nil {
		s.log.Close()
	}
	if s.dirf != nil {
		s.dirf.Close()
	}
}

// snapshot returns the counter, the number of writes and the size of the
// complete lines, consistently.
func (s *store) snapshot() (counter, lines, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter, s.lines, s.size
}

// incr durably increments the counter and returns its new value.
func (s *store) incr() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.counter + 1
	if err := s.replaceFile(counterFile, []byte(strconv.FormatInt(n, 10)+"\n")); err != nil {
		return 0, err
	}
	s.counter = n
	return n, nil
}

// replaceFile writes name atomically and durably: a temporary file, fsync,
// rename over name, fsync the directory (without which the rename itself
// could be lost in a power cut).
func (s *store) replaceFile(name string, data []byte) error {
	path := filepath.Join(s.dir, name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := s.dirf.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.dir, err)
	}
	return nil
}

// appendLine durably appends payload to the log and returns its seq.
func (s *store) appendLine(payload []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return 0, fmt.Errorf("writes.log refused since an earlier error (restart the pet to recover it): %w", s.broken)
	}
	seq := s.lines + 1
	line := formatLine(seq, time.Now(), payload)
	if _, err := s.log.Write(line); err != nil {
		// Part of the line may be in the file; the next append would glue
		// onto it and leave a corrupt line in the middle. Cut it now.
		if terr := s.log.Truncate(s.size); terr != nil {
			s.broken = err
		}
		return 0, fmt.Errorf("append to %s: %w", s.log.Name(), err)
	}
	if err := s.log.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages,
		// so what is on disk is unknown: stop appending. A restart rescans.
		s.broken = err
		return 0, fmt.Errorf("fsync %s: %w", s.log.Name(), err)
	}
	s.lines, s.size = seq, s.size+int64(len(line))
	return seq, nil
}

// formatLine builds one log line, newline included.
func formatLine(seq int64, t time.Time, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+52)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	b = append(b, '\t')
	b = append(b, payload...)
	sum := crc32.Checksum(b, castagnoli)
	return fmt.Appendf(b, "\t%08x\n", sum)
}

// checkLine validates line number n (1-based, newline stripped): its checksum
// covers everything before the last tab, so payloads may contain tabs; and
// its seq must be n, which catches lost, duplicated or reordered lines whose
// own checksums are fine.
func checkLine(n int64, line []byte) error {
	i := bytes.LastIndexByte(line, '\t')
	if i < 0 || len(line)-i-1 != 8 {
		return errors.New("no checksum field")
	}
	want, err := strconv.ParseUint(string(line[i+1:]), 16, 32)
	if err != nil {
		return errors.New("no checksum field")
	}
	if crc32.Checksum(line[:i], castagnoli) != uint32(want) {
		return errors.New("checksum mismatch")
	}
	fields := bytes.SplitN(line[:i], []byte{'\t'}, 3)
	if len(fields) != 3 {
		return errors.New("missing fields")
	}
	if _, err := strconv.ParseInt(string(fields[1]), 10, 64); err != nil {
		return errors.New("bad timestamp")
	}
	if seq, err := strconv.ParseInt(string(fields[0]), 10, 64); err != nil || seq != n {
		return fmt.Errorf("seq %q, want %d", fields[0], n)
	}
	return nil
}

// eachLine calls fn with every line of the log's first size bytes, newline
// stripped and numbered from 1. The bytes are only valid during the call.
// Reading below size needs no lock: appends only ever add bytes after it.
func (s *store) eachLine(size int64, fn func(n int64, line []byte) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, 0, size), 64<<10)
	var buf []byte
	for n := int64(1); ; n++ {
		buf = buf[:0]
		var err error
		for {
			var chunk []byte
			chunk, err = r.ReadSlice('\n')
			buf = append(buf, chunk...)
			if err != bufio.ErrBufferFull {
				break
			}
			if len(buf) > maxLine {
				return fmt.Errorf("line %d: longer than %d bytes", n, maxLine)
			}
		}
		switch {
		case err == io.EOF && len(buf) == 0:
			return nil
		case err == io.EOF:
			return fmt.Errorf("line %d: incomplete (no newline)", n)
		case err != nil:
			return fmt.Errorf("line %d: %w", n, err)
		}
		if err := fn(n, buf[:len(buf)-1]); err != nil {
			return err
		}
	}
}

// verify checks every line of the log as it is on disk now.
func (s *store) verify() (int64, error) {
	_, _, size := s.snapshot()
	var lines int64
	err := s.eachLine(size, func(n int64, line []byte) error {
		if err := checkLine(n, line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		lines = n
		return nil
	})
	return lines, err
}
