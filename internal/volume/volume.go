package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/atomicfile"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Kind is the attachment kind of volumes in the store.
const Kind = "volume"

// ErrHeld means a volume could not be attached because its previous holder
// could not be proven dead. The wrapping error names the holder.
var ErrHeld = errors.New("volume is held")

// ErrFenced means a holder's fencing token is older than one already used
// on the volume: it was superseded and must not run.
var ErrFenced = errors.New("fenced by a newer token")

// attachRetries bounds how often Attach and Detach re-read the record after
// losing a compare-and-swap to a concurrent change.
const attachRetries = 3

// Paths are the files of one volume.
type Paths struct {
	// Data is the directory the instance sees.
	Data string
	// Lock is flocked by the instance's processes while any of them lives.
	Lock string
	// TokenFile records the newest fencing token that ran on the volume.
	TokenFile string
	// Marker exists once the volume's init script succeeded.
	Marker string
}

// Manager attaches and detaches the volumes under one state dir.
type Manager struct {
	root string
	st   *store.Store
	// dirs are volumes kept elsewhere than under root (shared storage
	// every host of a cluster mounts), by group/name.
	dirs map[string]string
	// hosts are volumes on another cluster host (a local volume pinned
	// there), by group/name: their files are touched through it.
	hosts map[string]Host
	// floor is the lowest token an attach hands out: a cluster leader's
	// epoch (TokenFloor), so that its tokens are above any earlier
	// leader's, whose store this host never saw.
	floor int64

	mu sync.Mutex
	// busy serialises Attach and Detach per volume within this process.
	// The store's compare-and-swap is what makes attaching safe; this only
	// keeps two probes from flocking at once and reporting each other as
	// a live holder.
	busy map[string]chan struct{}
}

// NewManager returns a Manager for the volumes under stateDir/volumes,
// recording attachments in st.
func NewManager(stateDir string, st *store.Store) *Manager {
	return &Manager{
		root:  filepath.Join(stateDir, "volumes"),
		st:    st,
		dirs:  map[string]string{},
		hosts: map[string]Host{},
		busy:  map[string]chan struct{}{},
	}
}

// Host is another cluster host's volumes (a local volume lives on the
// host its instances are pinned to): its agent prepares, probes and marks
// them there, under its own state dir.
type Host interface {
	// Prepare is Prepare on that host; dir is where the volume lives
	// there.
	Prepare(group, name string) (dir string, needsInit bool, err error)
	// ProbeLock is ProbeLock of the volume's lock there.
	ProbeLock(group, name string) error
	// MarkInitialized is MarkInitialized there.
	MarkInitialized(group, name string) error
}

// SetHost keeps the volume group/name on another cluster host, h (nil:
// on this one, under the state dir).
func (m *Manager) SetHost(group, name string, h Host) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := group + "/" + name
	if h == nil {
		delete(m.hosts, key)
		delete(m.dirs, key)
		return
	}
	m.hosts[key] = h
}

// host is the other host that keeps group/name, or nil.
func (m *Manager) host(group, name string) Host {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hosts[group+"/"+name]
}

// LocalPaths are the files of volume group/name kept under root (a state
// dir's volumes directory).
func LocalPaths(root, group, name string) Paths { return pathsIn(filepath.Join(root, group, name)) }

func pathsIn(dir string) Paths {
	return Paths{
		Data:      filepath.Join(dir, "data"),
		Lock:      filepath.Join(dir, "lock"),
		TokenFile: filepath.Join(dir, "token"),
		Marker:    filepath.Join(dir, "initialized"),
	}
}

// SetDir keeps the volume group/name in dir (its data, lock, token and
// marker) instead of under the state dir: a shared volume on storage
// every host of a cluster mounts. Call before any attach.
func (m *Manager) SetDir(group, name, dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirs[group+"/"+name] = dir
}

// SetTokenFloor makes every token handed out from now on at least floor.
// A cluster leader sets it from its election's etcd revision (TokenFloor):
// a volume's token file, shared by every host, then always sees a newer
// leader's tokens above an older one's.
func (m *Manager) SetTokenFloor(floor int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.floor = floor
}

// TokenFloor is the token floor of a leader elected at etcd revision rev:
// rev in the high bits, so that a leader may hand out 2^20 tokens before
// reaching the next revision's floor.
func TokenFloor(rev int64) int64 { return rev << 20 }

// nextToken is the token of the next attach after cur, with the floor.
func nextToken(cur, floor int64) int64 { return max(cur+1, floor) }

// Paths returns where the files of a volume live.
func (m *Manager) Paths(group, name string) Paths {
	m.mu.Lock()
	dir, ok := m.dirs[group+"/"+name]
	m.mu.Unlock()
	if !ok {
		dir = filepath.Join(m.root, group, name)
	}
	return pathsIn(dir)
}

// Prepare creates the volume's directories (0700 for its own, 0755 for
// data) and its lock file, and reports whether the volume still needs its
// init script: it does until MarkInitialized, like an EBS volume without a
// filesystem.
func (m *Manager) Prepare(group, name string) (needsInit bool, err error) {
	if err := validate(group, name); err != nil {
		return false, fmt.Errorf("prepare volume: %w", err)
	}
	if h := m.host(group, name); h != nil {
		dir, needs, err := h.Prepare(group, name)
		if err != nil {
			return false, fmt.Errorf("prepare volume %s/%s: %w", group, name, err)
		}
		m.SetDir(group, name, dir)
		return needs, nil
	}
	return PrepareDir(m.Paths(group, name))
}

// PrepareDir is Prepare on the volume whose files are p.
func PrepareDir(p Paths) (needsInit bool, err error) {
	dir := filepath.Dir(p.Data)
	if err := os.MkdirAll(filepath.Dir(p.Data), 0o700); err != nil {
		return false, fmt.Errorf("prepare volume %s: %w", dir, err)
	}
	if err := os.Mkdir(p.Data, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return false, fmt.Errorf("prepare volume %s: %w", dir, err)
	}
	f, err := os.OpenFile(p.Lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("prepare volume %s: %w", dir, err)
	}
	f.Close()
	_, err = os.Stat(p.Marker)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("prepare volume %s: %w", dir, err)
	}
	return false, nil
}

// MarkInitialized records that the volume's init script succeeded. What the
// script wrote is flushed to disk first, so a crash can never leave a marker
// on a volume whose initial contents were lost.
func (m *Manager) MarkInitialized(group, name string) error {
	if err := validate(group, name); err != nil {
		return fmt.Errorf("mark volume initialized: %w", err)
	}
	if h := m.host(group, name); h != nil {
		if err := h.MarkInitialized(group, name); err != nil {
			return fmt.Errorf("mark volume %s/%s initialized: %w", group, name, err)
		}
		return nil
	}
	return MarkDir(m.Paths(group, name))
}

// MarkDir is MarkInitialized on the volume whose files are p.
func MarkDir(p Paths) error {
	dir := filepath.Dir(p.Data)
	if err := syncFS(p.Data); err != nil {
		return fmt.Errorf("mark volume %s initialized: flush data: %w", dir, err)
	}
	stamp := time.Now().UTC().Format(time.RFC3339Nano) + "\n"
	if err := atomicfile.WriteFile(p.Marker, []byte(stamp), 0o600); err != nil {
		return fmt.Errorf("mark volume %s initialized: %w", dir, err)
	}
	return nil
}

// Attach gives the volume to instance and returns the attachment with its
// new fencing token. It fails with an error wrapping ErrHeld, naming the
// holder, unless the previous holder is proven dead: a holder other than
// instance must be reported not alive by isAlive (a nil isAlive proves
// nothing), and nobody may hold the flock on the lock file. Re-attaching to
// the same instance (a restart in place) also bumps the token, so the
// instance's previous run is fenced too.
func (m *Manager) Attach(ctx context.Context, group, name, instance string, isAlive func(id string) bool) (store.Attachment, error) {
	for attempt := 1; ; attempt++ {
		att, swap, release, err := m.PrepareAttach(ctx, group, name, instance, isAlive)
		if err != nil {
			return store.Attachment{}, err
		}
		err = m.st.Commit(ctx, swap)
		release()
		if errors.Is(err, store.ErrConflict) && attempt < attachRetries {
			continue // changed under us (another process?): decide again on the new record
		}
		if err != nil {
			return store.Attachment{}, fmt.Errorf("attach volume %s/%s to %s: %w", group, name, instance, err)
		}
		return att, nil
	}
}

// PrepareAttach decides an attach as Attach does, and returns the
// attachment it makes and the change that makes it, for the caller to
// commit with others in one durable write (store.Commit). The change fails
// that write with ErrConflict if the record moved meanwhile. Until release
// is called, after the commit, other attaches and detaches of the volume
// in this process wait.
func (m *Manager) PrepareAttach(ctx context.Context, group, name, instance string, isAlive func(id string) bool) (att store.Attachment, swap store.Change, release func(), err error) {
	if err := validate(group, name); err != nil {
		return att, swap, nil, fmt.Errorf("attach volume: %w", err)
	}
	if instance == "" {
		return att, swap, nil, fmt.Errorf("attach volume %s/%s: empty instance id", group, name)
	}
	fail := func(err error) (store.Attachment, store.Change, func(), error) {
		return store.Attachment{}, store.Change{}, nil, fmt.Errorf("attach volume %s/%s to %s: %w", group, name, instance, err)
	}
	release, err = m.acquire(ctx, group, name)
	if err != nil {
		return fail(err)
	}
	p := m.Paths(group, name)
	h := m.host(group, name)
	if h == nil {
		if err := os.MkdirAll(filepath.Dir(p.Lock), 0o700); err != nil {
			release()
			return fail(err)
		}
	}
	cur, err := m.st.Attachment(ctx, Kind, group, name)
	if err != nil {
		release()
		return fail(err)
	}
	if cur.Holder != "" && cur.Holder != instance && (isAlive == nil || isAlive(cur.Holder)) {
		release()
		return fail(fmt.Errorf("held by live instance %s (token %d): %w", cur.Holder, cur.Token, ErrHeld))
	}
	// The record says nobody alive holds it; the lock says whether a
	// process of any earlier holder survives (an orphaned child, a holder
	// the controller lost track of). Only both together are proof.
	probe := func() error { return ProbeLock(p.Lock) }
	if h != nil {
		probe = func() error { return h.ProbeLock(group, name) }
	}
	if err := probe(); err != nil {
		release()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := cur.Holder
			if who == "" {
				who = "none"
			}
			return fail(fmt.Errorf("lock %s is held by a running process (recorded holder %s): %w", p.Lock, who, ErrHeld))
		}
		return fail(fmt.Errorf("probe lock: %w", err))
	}
	m.mu.Lock()
	token := nextToken(cur.Token, m.floor)
	m.mu.Unlock()
	msg := fmt.Sprintf("%s attached to %s (token %d)", name, instance, token)
	if cur.Holder != "" && cur.Holder != instance {
		msg += fmt.Sprintf(", taken over from %s which is gone", cur.Holder)
	}
	ev := store.Event{Type: event.KindVolumeAttach, Group: group, Instance: instance, Message: msg,
		Data: event.VolumeAttach{Volume: name, Token: token, PreviousHolder: cur.Holder}}
	att, swap = store.AttachmentSwapTo(cur, instance, token, ev)
	return att, swap, release, nil
}

// Detach releases the volume iff instance holds it. Detaching a volume
// nobody holds is a no-op; one held by someone else fails with an error
// wrapping store.ErrConflict. The token is kept: only attaching bumps it.
func (m *Manager) Detach(ctx context.Context, group, name, instance string) error {
	if err := validate(group, name); err != nil {
		return fmt.Errorf("detach volume: %w", err)
	}
	release, err := m.acquire(ctx, group, name)
	if err != nil {
		return fmt.Errorf("detach volume %s/%s from %s: %w", group, name, instance, err)
	}
	defer release()
	for attempt := 1; ; attempt++ {
		cur, err := m.st.Attachment(ctx, Kind, group, name)
		if err != nil {
			return fmt.Errorf("detach volume %s/%s from %s: %w", group, name, instance, err)
		}
		if cur.Holder == "" {
			return nil
		}
		if cur.Holder != instance {
			return fmt.Errorf("detach volume %s/%s from %s: held by %s (token %d): %w",
				group, name, instance, cur.Holder, cur.Token, store.ErrConflict)
		}
		ev := store.Event{Type: event.KindVolumeDetach, Group: group, Instance: instance,
			Message: fmt.Sprintf("%s detached from %s (token %d)", name, instance, cur.Token),
			Data:    event.VolumeDetach{Volume: name, Token: cur.Token}}
		_, err = m.st.SwapAttachment(ctx, cur, "", false, ev)
		if errors.Is(err, store.ErrConflict) && attempt < attachRetries {
			continue
		}
		if err != nil {
			return fmt.Errorf("detach volume %s/%s from %s: %w", group, name, instance, err)
		}
		return nil
	}
}

// acquire waits for this process's other Attach or Detach of the same
// volume, or for ctx.
func (m *Manager) acquire(ctx context.Context, group, name string) (release func(), err error) {
	key := group + "/" + name
	m.mu.Lock()
	ch, ok := m.busy[key]
	if !ok {
		ch = make(chan struct{}, 1)
		m.busy[key] = ch
	}
	m.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ProbeLock proves nobody holds the lock file by taking the flock and
// releasing it at once. It returns an error wrapping EWOULDBLOCK when a
// process holds it.
func ProbeLock(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("flock %s: %w", path, err)
	}
	// Unlock explicitly rather than rely on Close: a fork elsewhere in
	// this process may hold a copy of the descriptor until its exec, and
	// the lock belongs to the open file description, not the descriptor.
	if err := flock(f, syscall.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", path, err)
	}
	return nil
}

// flock retries on EINTR, which Go's runtime signals can cause.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// CheckToken is the fencing check the instance side runs while it holds
// the volume's flock, right before the application starts. If tokenFile
// records a token newer than token, this holder was superseded and gets an
// error wrapping ErrFenced; otherwise token is recorded, atomically. A
// missing or empty file counts as 0. Because the caller holds the flock, the
// read and the write cannot interleave with another holder's.
//
// The record is not fsynced: it guards against a stale holder started in
// the same boot, and every process sees the page cache at once. After a
// power loss or kernel crash the file may show an older token or none (an
// empty or zero-filled file counts as 0), but no holder from before
// survives that, and the store (synchronous=FULL) hands out tokens above
// anything the file ever recorded. The fsyncs (file and
// dir) were a millisecond on every replacement's way back to service.
func CheckToken(tokenFile string, token int64) error {
	if token <= 0 {
		return fmt.Errorf("check volume token %s: token %d is not a fencing token", tokenFile, token)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check volume token %s: %w", tokenFile, err)
	}
	if s := strings.Trim(string(b), " \t\r\n\x00"); s != "" {
		cur, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			// A corrupt token cannot prove this holder is current.
			return fmt.Errorf("check volume token %s: unreadable token %q: %w", tokenFile, s, err)
		}
		if cur > token {
			return fmt.Errorf("check volume token %s: token %d is stale, %d already ran: %w", tokenFile, token, cur, ErrFenced)
		}
		if cur == token {
			return nil // this attach already recorded it (a retried start)
		}
	}
	// Not fsynced, deliberately: see above.
	if err := atomicfile.WriteFileNoSync(tokenFile, []byte(strconv.FormatInt(token, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("check volume token %s: %w", tokenFile, err)
	}
	return nil
}

// validate keeps names from escaping the volumes dir.
func validate(group, name string) error {
	for _, s := range [...]struct{ what, v string }{{"group", group}, {"volume name", name}} {
		if s.v == "" || s.v == "." || s.v == ".." || strings.ContainsAny(s.v, "/\x00") {
			return fmt.Errorf("invalid %s %q", s.what, s.v)
		}
	}
	return nil
}
