package metrics

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Options configure a Store. The zero value of each field means its
// default.
type Options struct {
	// Resolution is the width of a storage slot: the finest period a query
	// can ask for. A whole number of seconds. Default 10s.
	Resolution time.Duration
	// Retention is how long a slot is kept. Default 3h.
	Retention time.Duration
	// MaxSeries is the most series kept; a datum that would create one
	// more is refused (ErrTooManySeries). Series with no data left within
	// Retention are dropped and free their place. Default 10000.
	MaxSeries int
	// MaxBatch is the most datums one Put takes; a larger batch is refused
	// whole. Default 1000, CloudWatch's limit.
	MaxBatch int
	// MaxValues is the most Values one datum carries. Default 150,
	// CloudWatch's limit.
	MaxValues int
	// MaxFuture is how far after now a timestamp may be. Default 2h.
	MaxFuture time.Duration
	// MaxAge is how far before now a timestamp may be. Default and at most
	// Retention.
	MaxAge time.Duration
	// Path is the snapshot file: read by New, written every
	// SnapshotInterval and by Close (to a temporary file, synced, then
	// renamed over it). Empty: no persistence.
	Path string
	// SnapshotInterval is how often the store snapshots itself and drops
	// expired slots and series. Default 1m.
	SnapshotInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets snapshot failures. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) fill() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Resolution, 10*time.Second)
	def(&o.Retention, 3*time.Hour)
	def(&o.MaxFuture, 2*time.Hour)
	def(&o.MaxAge, o.Retention)
	def(&o.SnapshotInterval, time.Minute)
	if o.MaxSeries == 0 {
		o.MaxSeries = 10000
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1000
	}
	if o.MaxValues == 0 {
		o.MaxValues = 150
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Resolution < time.Second || o.Resolution%time.Second != 0:
		return fmt.Errorf("resolution %s: give a whole number of seconds", o.Resolution)
	case o.Retention < o.Resolution:
		return fmt.Errorf("retention %s is shorter than the resolution %s", o.Retention, o.Resolution)
	case o.MaxAge < 0 || o.MaxAge > o.Retention:
		return fmt.Errorf("max age %s: give at most the retention %s", o.MaxAge, o.Retention)
	case o.MaxFuture < 0:
		return fmt.Errorf("max future %s is negative", o.MaxFuture)
	case o.MaxSeries < 0 || o.MaxBatch < 0 || o.MaxValues < 0 || o.SnapshotInterval < 0:
		return errors.New("limits must not be negative")
	}
	if n := (o.Retention + o.MaxFuture) / o.Resolution; n > maxSlots {
		return fmt.Errorf("(retention %s + max future %s) / resolution %s is %d slots per series, at most %d",
			o.Retention, o.MaxFuture, o.Resolution, n, maxSlots)
	}
	return nil
}

const (
	nShards   = 64
	pageSlots = 64
	maxSlots  = 1 << 20
	// pageBytes is the memory of one page of slots.
	pageBytes = int64(pageSlots * unsafe.Sizeof(slot{}))
)

// Store holds every series. Its methods are safe for concurrent use.
type Store struct {
	opts Options
	res  int64 // resolution in ns
	// retSlots is Retention in slots; nslots is the ring's size: it covers
	// [now-Retention, now+MaxFuture] so that an accepted timestamp never
	// lands on a slot that still holds live data.
	retSlots, nslots int64
	seed             maphash.Seed
	shards           [nShards]shard
	count            atomic.Int64 // series
	closed           atomic.Bool

	stop, done chan struct{}
	closeOnce  sync.Once
	closeErr   error
	snapMu     sync.Mutex // one snapshot writer at a time
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*series
	_  [64]byte // keep shards' locks on their own cache lines
}

// series is one series' ring of slots, allocated page by page.
type series struct {
	mu   sync.Mutex
	key  SeriesKey
	id   string // the map key
	unit Unit
	// pages[i] holds slots [i*pageSlots, (i+1)*pageSlots) of the ring.
	pages []*[pageSlots]slot
	bytes int64
	names int64 // bytes of key and id
	last  int64 // newest epoch written
	dead  bool  // dropped from the map: writers look it up again
}

// slot is one Resolution-wide bucket of time: epoch is its start divided
// by the resolution (0: empty). A slot without a sketch has only samples
// equal to min (and max).
type slot struct {
	epoch                int64
	count, sum, min, max float64
	sk                   *sketch
}

// New makes a store and loads the snapshot at opts.Path, if there is one.
// A snapshot that cannot be parsed is moved aside (Path+".corrupt") with a
// warning, and the store starts empty: metrics are not worth refusing to
// start for. The store snapshots and sweeps itself every
// SnapshotInterval until Close.
func New(opts Options) (*Store, error) {
	if err := opts.fill(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s := &Store{
		opts: opts, res: int64(opts.Resolution),
		retSlots: int64(opts.Retention / opts.Resolution),
		nslots:   int64((opts.Retention+opts.MaxFuture)/opts.Resolution) + 1,
		seed:     maphash.MakeSeed(),
		stop:     make(chan struct{}), done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].m = map[string]*series{}
	}
	if opts.Path != "" {
		if err := s.load(); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	go s.loop()
	return s, nil
}

// Close stops the background loop, waits for it and writes the snapshot.
// Datums put after Close are refused. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		if s.opts.Path != "" {
			s.closeErr = s.Snapshot()
		}
	})
	return s.closeErr
}

func (s *Store) loop() {
	defer close(s.done)
	if s.opts.SnapshotInterval == 0 {
		return
	}
	t := time.NewTicker(s.opts.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.tick()
		}
	}
}

// tick sweeps and snapshots; a panic is logged, not fatal: the datums
// keep flowing and the next tick tries again.
func (s *Store) tick() {
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logger.Error("metrics: snapshot panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	s.Sweep()
	if s.opts.Path != "" {
		if err := s.Snapshot(); err != nil {
			s.opts.Logger.Warn("metrics: snapshot", "path", s.opts.Path, "err", err)
		}
	}
}

// Resolution is the width of a slot.
func (s *Store) Resolution() time.Duration { return s.opts.Resolution }

// Limits returns the options in force, defaults filled in.
func (s *Store) Limits() Options { return s.opts }

// Slots is the number of slots in a series' ring.
func (s *Store) Slots() int { return int(s.nslots) }

// maxSeriesBytes bounds a series' memory, apart from its names.
func (s *Store) maxSeriesBytes() int64 {
	pages := (s.nslots + pageSlots - 1) / pageSlots
	return int64(unsafe.Sizeof(series{})) + pages*(8+pageBytes) + s.nslots*sketchBytes(SketchBuckets+1)
}

// MaxSeriesBytes bounds one series' memory apart from its names: a full
// ring with every slot's sketch at its largest.
func (s *Store) MaxSeriesBytes() int64 { return s.maxSeriesBytes() }

// putter carries one Put's scratch space.
type putter struct {
	key   []byte
	order [MaxDimensions]uint8
}

var putters = sync.Pool{New: func() any { return &putter{key: make([]byte, 0, 256)} }}

// Put stores a batch of datums under namespace. It returns nil when every
// datum was stored; otherwise a slice as long as data whose nil entries
// are the datums stored, the others *DatumError naming the datum and the
// field. A batch that is wrong as a whole (a bad namespace, more than
// MaxBatch datums, a closed store) stores nothing and has the same error
// at every index.
func (s *Store) Put(namespace string, data []Datum) []error {
	var whole error
	switch {
	case s.closed.Load():
		whole = ErrClosed
	case len(data) > s.opts.MaxBatch:
		whole = invalid("%d datums in one batch, at most %d: split it", len(data), s.opts.MaxBatch)
	default:
		whole = CheckNamespace(namespace)
	}
	if whole != nil {
		errs := make([]error, len(data))
		for i := range errs {
			errs[i] = whole
		}
		return errs
	}
	now := s.opts.Now()
	oldest, newest := now.Add(-s.opts.MaxAge), now.Add(s.opts.MaxFuture)
	nowNs := now.UnixNano()
	p := putters.Get().(*putter)
	defer putters.Put(p)
	var errs []error
	for i := range data {
		if err := s.put(p, namespace, &data[i], nowNs, oldest, newest); err != nil {
			if errs == nil {
				errs = make([]error, len(data))
			}
			err.Index = i
			errs[i] = err
		}
	}
	return errs
}

// PutValue stores one value: a convenience for built-in metrics.
func (s *Store) PutValue(namespace, metric string, dims []Dimension, unit Unit, t time.Time, v float64) error {
	if errs := s.Put(namespace, []Datum{{MetricName: metric, Dimensions: dims, Timestamp: t, Value: v, Unit: unit}}); errs != nil {
		return errs[0]
	}
	return nil
}

func derr(field string, err error) *DatumError { return &DatumError{Field: field, Err: err} }

// put stores one datum. Names are checked only when a series is created:
// a datum whose key matches an existing series has the same names.
func (s *Store) put(p *putter, ns string, d *Datum, nowNs int64, oldest, newest time.Time) *DatumError {
	if len(d.Dimensions) > MaxDimensions {
		return derr("Dimensions", invalid("%d dimensions, at most %d", len(d.Dimensions), MaxDimensions))
	}
	ts := nowNs
	if !d.Timestamp.IsZero() {
		// Compared as times: UnixNano is undefined far from now.
		if d.Timestamp.Before(oldest) {
			return derr("Timestamp", invalid("%s is more than %s before now", d.Timestamp.Format(time.RFC3339), s.opts.MaxAge))
		}
		if d.Timestamp.After(newest) {
			return derr("Timestamp", invalid("%s is more than %s after now", d.Timestamp.Format(time.RFC3339), s.opts.MaxFuture))
		}
		ts = d.Timestamp.UnixNano()
	}
	if len(d.Values) > 0 {
		if len(d.Values) > s.opts.MaxValues {
			return derr("Values", invalid("%d values, at most %d", len(d.Values), s.opts.MaxValues))
		}
		if len(d.Counts) != 0 && len(d.Counts) != len(d.Values) {
			return derr("Counts", invalid("%d counts for %d values: give one count per value, or none", len(d.Counts), len(d.Values)))
		}
		for j, v := range d.Values {
			if err := checkValue(v); err != nil {
				return derr(fmt.Sprintf("Values[%d]", j), err)
			}
		}
		for j, c := range d.Counts {
			if err := checkCount(c); err != nil {
				return derr(fmt.Sprintf("Counts[%d]", j), err)
			}
		}
	} else {
		if len(d.Counts) != 0 {
			return derr("Counts", invalid("Counts without Values"))
		}
		if err := checkValue(d.Value); err != nil {
			return derr("Value", err)
		}
	}
	if d.Unit != "" && !units[d.Unit] {
		return derr("Unit", invalid("unknown unit %q (CloudWatch's standard units: Seconds, Milliseconds, Bytes, Count, Percent, Count/Second, None, ...)", d.Unit))
	}
	order := p.order[:len(d.Dimensions)]
	sortDims(d.Dimensions, order)
	p.key = appendKey(p.key[:0], ns, d.MetricName, d.Dimensions, order)
	epoch := ts / s.res
	for {
		sr, err := s.lookup(p.key, ns, d, order)
		if err != nil {
			return err
		}
		sr.mu.Lock()
		if sr.dead {
			sr.mu.Unlock()
			continue
		}
		if d.Unit != "" && d.Unit != sr.unit {
			if sr.unit != "" {
				u := sr.unit
				sr.mu.Unlock()
				return derr("Unit", invalid("%s, but the series has unit %s: one unit per series", d.Unit, u))
			}
			sr.unit = d.Unit
		}
		ok := s.add(sr, epoch, d)
		sr.mu.Unlock()
		if !ok {
			return derr("Timestamp", invalid("the slot of %s already holds newer data (clock went back?)", time.Unix(0, ts).UTC().Format(time.RFC3339)))
		}
		return nil
	}
}

// sortDims fills order with the indexes of dims sorted by name, without
// touching the caller's slice.
func sortDims(dims []Dimension, order []uint8) {
	for i := range order {
		order[i] = uint8(i)
	}
	// Insertion sort: a handful of dimensions, usually already in order.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && dims[order[j]].Name < dims[order[j-1]].Name; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
}

// appendKey appends a series' map key: its names separated by control
// characters, which names cannot hold.
func appendKey(b []byte, ns, metric string, dims []Dimension, order []uint8) []byte {
	b = append(b, ns...)
	b = append(b, 0)
	b = append(b, metric...)
	for _, i := range order {
		b = append(b, 0)
		b = append(b, dims[i].Name...)
		b = append(b, 1)
		b = append(b, dims[i].Value...)
	}
	return b
}

func (s *Store) shard(key []byte) *shard {
	return &s.shards[maphash.Bytes(s.seed, key)%nShards]
}

// lookup finds or creates the series of key.
func (s *Store) lookup(key []byte, ns string, d *Datum, order []uint8) (*series, *DatumError) {
	sh := s.shard(key)
	sh.mu.RLock()
	sr := sh.m[string(key)]
	sh.mu.RUnlock()
	if sr != nil {
		return sr, nil
	}
	// A new series: check its names, then take a place.
	if err := checkName("MetricName", d.MetricName, MaxNameLen); err != nil {
		return nil, derr("MetricName", err)
	}
	for j, i := range order {
		dm := d.Dimensions[i]
		if err := checkName("name", dm.Name, MaxNameLen); err != nil {
			return nil, derr(fmt.Sprintf("Dimensions[%d].Name", i), err)
		}
		if err := checkName("value", dm.Value, MaxDimensionValueLen); err != nil {
			return nil, derr(fmt.Sprintf("Dimensions[%d].Value", i), err)
		}
		if j > 0 && d.Dimensions[order[j-1]].Name == dm.Name {
			return nil, derr(fmt.Sprintf("Dimensions[%d].Name", i), invalid("dimension %q given twice", dm.Name))
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sr := sh.m[string(key)]; sr != nil {
		return sr, nil
	}
	if n := s.count.Add(1); n > int64(s.opts.MaxSeries) {
		s.count.Add(-1)
		return nil, derr("", fmt.Errorf("%w: %d series kept, at most %d (MaxSeries); series with no data for %s are dropped",
			ErrTooManySeries, n-1, s.opts.MaxSeries, s.opts.Retention))
	}
	sr = s.newSeries(string(key), ns, d.MetricName, d.Dimensions, order)
	sh.m[sr.id] = sr
	return sr, nil
}

func (s *Store) newSeries(id, ns, metric string, dims []Dimension, order []uint8) *series {
	k := SeriesKey{Namespace: strings.Clone(ns), MetricName: strings.Clone(metric)}
	if len(order) > 0 {
		k.Dimensions = make([]Dimension, len(order))
		for j, i := range order {
			k.Dimensions[j] = Dimension{Name: strings.Clone(dims[i].Name), Value: strings.Clone(dims[i].Value)}
		}
	}
	sr := &series{key: k, id: id, pages: make([]*[pageSlots]slot, (s.nslots+pageSlots-1)/pageSlots)}
	sr.names = int64(len(id) + len(k.Namespace) + len(k.MetricName))
	for _, d := range k.Dimensions {
		sr.names += int64(len(d.Name)+len(d.Value)) + int64(unsafe.Sizeof(Dimension{}))
	}
	sr.bytes = int64(unsafe.Sizeof(series{})) + int64(8*len(sr.pages)) + sr.names
	return sr
}

// slotAt returns the slot that holds epoch e, allocating its page.
func (s *Store) slotAt(sr *series, e int64, alloc bool) *slot {
	pos := e % s.nslots
	pg := sr.pages[pos/pageSlots]
	if pg == nil {
		if !alloc {
			return nil
		}
		pg = new([pageSlots]slot)
		sr.pages[pos/pageSlots] = pg
		sr.bytes += pageBytes
	}
	return &pg[pos%pageSlots]
}

// add adds a checked datum to the slot of epoch e. It returns false when
// the slot holds a newer epoch. sr.mu is held.
func (s *Store) add(sr *series, e int64, d *Datum) bool {
	sl := s.slotAt(sr, e, true)
	if sl.epoch != e {
		if sl.epoch > e {
			return false
		}
		sl.reset(e)
	}
	if e > sr.last {
		sr.last = e
	}
	if len(d.Values) == 0 {
		sr.bytes += sl.observe(d.Value, 1)
		return true
	}
	for j, v := range d.Values {
		c := 1.0
		if len(d.Counts) > 0 {
			c = d.Counts[j]
		}
		if c > 0 {
			sr.bytes += sl.observe(v, c)
		}
	}
	return true
}

// reset empties a slot for epoch e, keeping its sketch's memory.
func (sl *slot) reset(e int64) {
	sk := sl.sk
	*sl = slot{epoch: e}
	if sk != nil {
		sk.b, sk.level = sk.b[:0], 0
		sl.sk = sk
	}
}

// cnt is a count as the sketch keeps it.
func cnt(c float64) uint64 { return uint64(math.Min(c, countMask)) }

// observe adds v, c times (c > 0, whole); it returns the change in bytes.
// While every sample of a slot is equal its sketch stays empty (or nil):
// most slots of a gauge hold one sample.
func (sl *slot) observe(v, c float64) int64 {
	var grown int64
	switch {
	case sl.count == 0:
		sl.min, sl.max = v, v
	case sl.sk != nil && len(sl.sk.b) > 0:
		grown += sl.sk.add(v, cnt(c))
	case v != sl.min:
		if sl.sk == nil {
			sl.sk = &sketch{}
			grown += sketchBytes(0)
		}
		grown += sl.sk.add(sl.min, cnt(sl.count))
		grown += sl.sk.add(v, cnt(c))
	}
	sl.count += c
	sl.sum += v * c
	sl.min = math.Min(sl.min, v)
	sl.max = math.Max(sl.max, v)
	return grown
}

// buckets returns the slot's buckets and their level: its sketch's, or a
// single bucket when all its samples are equal (buf is scratch space).
func (sl *slot) buckets(buf []uint64) ([]uint64, uint8) {
	if sl.sk != nil && len(sl.sk.b) > 0 {
		return sl.sk.b, sl.sk.level
	}
	return append(buf[:0], keyOf(sl.min, 0)<<countBits|cnt(sl.count)), 0
}

// Sweep drops slots older than the retention, frees pages left empty and
// series with no slot left. The store calls it every SnapshotInterval.
func (s *Store) Sweep() {
	horizon := s.opts.Now().UnixNano()/s.res - s.retSlots
	for i := range s.shards {
		sh := &s.shards[i]
		var empty []*series
		for _, sr := range sh.snapshot() {
			sr.mu.Lock()
			if sweepSeries(sr, horizon) {
				empty = append(empty, sr)
			}
			sr.mu.Unlock()
		}
		if len(empty) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, sr := range empty {
			sr.mu.Lock()
			// Data may have come in since: look again under both locks.
			if !sr.dead && slices.IndexFunc(sr.pages, func(p *[pageSlots]slot) bool { return p != nil }) < 0 {
				sr.dead = true
				delete(sh.m, sr.id)
				s.count.Add(-1)
			}
			sr.mu.Unlock()
		}
		sh.mu.Unlock()
	}
}

// sweepSeries clears a series' slots older than horizon and frees its
// empty pages; it reports whether no page is left.
func sweepSeries(sr *series, horizon int64) bool {
	left := false
	for pi, pg := range sr.pages {
		if pg == nil {
			continue
		}
		live := false
		for j := range pg {
			sl := &pg[j]
			if sl.epoch == 0 {
				continue
			}
			if sl.epoch < horizon {
				if sl.sk != nil {
					sr.bytes -= sketchBytes(cap(sl.sk.b))
				}
				*sl = slot{}
				continue
			}
			live = true
		}
		if !live {
			sr.pages[pi] = nil
			sr.bytes -= pageBytes
			continue
		}
		left = true
	}
	return !left
}
