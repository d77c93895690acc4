package metrics

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"

	"github.com/autoheal/autoheal/internal/atomicfile"
)

// The snapshot file: a magic string, the resolution, then one record per
// series and a zero byte, then the CRC-32 (IEEE) of everything before it.
// A series record is its names, then its live slots, each with its
// sketch. Varints throughout, floats as their IEEE bits.
const snapMagic = "AHMETRC1"

// Bounds a snapshot's lengths are checked against, so that a corrupt file
// cannot make the loader allocate without end.
const (
	maxSnapString  = 4096
	maxSnapBuckets = 1 << 16
)

// Snapshot writes every series to Options.Path, durably and atomically
// (atomicfile.Write): a crash leaves the previous snapshot or this one.
// Each series is locked only while it is copied.
func (s *Store) Snapshot() error {
	if s.opts.Path == "" {
		return nil
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if err := atomicfile.Write(s.opts.Path, 0o600, s.writeSnapshot); err != nil {
		return fmt.Errorf("snapshot metrics: %w", err)
	}
	return nil
}

func (s *Store) writeSnapshot(f io.Writer) error {
	crc := crc32.NewIEEE()
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<16)
	var rec []byte
	rec = append(rec, snapMagic...)
	rec = binary.AppendUvarint(rec, uint64(s.res))
	w.Write(rec)
	horizon := s.horizon()
	s.each(func(sr *series) {
		sr.mu.Lock()
		rec = s.appendSeries(rec[:0], sr, horizon)
		sr.mu.Unlock()
		w.Write(rec)
	})
	w.WriteByte(0)
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendSeries encodes sr's live slots; sr.mu is held.
func (s *Store) appendSeries(b []byte, sr *series, horizon int64) []byte {
	var n uint64
	for _, pg := range sr.pages {
		if pg != nil {
			for j := range pg {
				if pg[j].epoch >= horizon && pg[j].count > 0 {
					n++
				}
			}
		}
	}
	if n == 0 {
		return b
	}
	b = append(b, 1)
	b = appendString(b, sr.key.Namespace)
	b = appendString(b, sr.key.MetricName)
	b = appendString(b, string(sr.unit))
	b = binary.AppendUvarint(b, uint64(len(sr.key.Dimensions)))
	for _, d := range sr.key.Dimensions {
		b = appendString(appendString(b, d.Name), d.Value)
	}
	b = binary.AppendUvarint(b, n)
	for _, pg := range sr.pages {
		if pg == nil {
			continue
		}
		for j := range pg {
			sl := &pg[j]
			if sl.epoch < horizon || sl.count == 0 {
				continue
			}
			b = binary.AppendVarint(b, sl.epoch)
			b = appendFloat(appendFloat(appendFloat(appendFloat(b, sl.count), sl.sum), sl.min), sl.max)
			if sl.sk == nil || len(sl.sk.b) == 0 {
				b = append(b, 0)
				b = binary.AppendUvarint(b, 0)
				continue
			}
			b = append(b, sl.sk.level)
			b = binary.AppendUvarint(b, uint64(len(sl.sk.b)))
			for _, w := range sl.sk.b {
				b = binary.LittleEndian.AppendUint64(b, w)
			}
		}
	}
	return b
}

// load reads the snapshot, if any. A file that does not parse is moved
// aside and the store starts empty.
func (s *Store) load() error {
	b, err := os.ReadFile(s.opts.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	// The checksum first: nothing of a damaged file is used.
	if len(b) < len(snapMagic)+4 {
		err = errors.New("too short")
	} else if sum := binary.LittleEndian.Uint32(b[len(b)-4:]); crc32.ChecksumIEEE(b[:len(b)-4]) != sum {
		err = errors.New("checksum mismatch")
	} else {
		r := &snapReader{r: bufio.NewReader(bytes.NewReader(b[:len(b)-4]))}
		if err = s.readSnapshot(r); err == nil {
			if _, rerr := r.r.ReadByte(); rerr != io.EOF {
				err = errors.New("data after the last series")
			}
		}
	}
	if err == nil {
		return nil
	}
	// Start empty rather than from half a file.
	for i := range s.shards {
		s.shards[i].m = map[string]*series{}
	}
	s.count.Store(0)
	aside := s.opts.Path + ".corrupt"
	if rerr := os.Rename(s.opts.Path, aside); rerr != nil {
		return fmt.Errorf("load snapshot %s: %v; and cannot move it aside: %w", s.opts.Path, err, rerr)
	}
	s.opts.Logger.Warn("metrics: snapshot unreadable, moved aside; starting empty", "path", s.opts.Path, "aside", aside, "err", err)
	return nil
}

// snapReader reads a snapshot's fields, remembering the first error.
type snapReader struct {
	r   *bufio.Reader
	err error
}

func (r *snapReader) fail(err error) {
	if r.err == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
	}
}

func (r *snapReader) byte() byte {
	if r.err != nil {
		return 0
	}
	c, err := r.r.ReadByte()
	r.fail(err)
	return c
}

func (r *snapReader) uvarint(max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r.r)
	r.fail(err)
	if err == nil && v > max {
		r.fail(fmt.Errorf("length %d out of bounds", v))
		return 0
	}
	return v
}

func (r *snapReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(r.r)
	r.fail(err)
	return v
}

func (r *snapReader) float() float64 {
	var b [8]byte
	if r.err != nil {
		return 0
	}
	_, err := io.ReadFull(r.r, b[:])
	r.fail(err)
	return math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
}

func (r *snapReader) string() string {
	n := r.uvarint(maxSnapString)
	if r.err != nil {
		return ""
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r.r, b)
	r.fail(err)
	return string(b)
}

func (s *Store) readSnapshot(r *snapReader) error {
	var magic [len(snapMagic)]byte
	if _, err := io.ReadFull(r.r, magic[:]); err != nil || string(magic[:]) != snapMagic {
		return errors.New("not a metrics snapshot")
	}
	res := int64(r.uvarint(uint64(24 * time.Hour)))
	if r.err == nil && res < int64(time.Second) {
		return fmt.Errorf("resolution %d out of bounds", res)
	}
	now := s.opts.Now().UnixNano() / s.res
	horizon, newest := now-s.retSlots, now+s.nslots-s.retSlots
	var key []byte
	var order [MaxDimensions]uint8
	for r.err == nil && r.byte() == 1 {
		ns, d, unit := r.seriesHead()
		n := r.uvarint(maxSlots)
		if r.err != nil {
			break
		}
		if !unit.Valid() {
			return fmt.Errorf("unit %q", unit)
		}
		o := order[:len(d.Dimensions)]
		sortDims(d.Dimensions, o)
		key = appendKey(key[:0], ns, d.MetricName, d.Dimensions, o)
		var sr *series
		for range n {
			src, ok := r.slot()
			if r.err != nil {
				break
			}
			if !ok {
				return fmt.Errorf("series %s: a slot does not make sense", ns+" "+d.MetricName)
			}
			// The resolution may have changed since: place the slot by
			// its start time.
			e := floorDiv(src.epoch*res, s.res)
			if e < horizon || e > newest || src.count == 0 {
				continue
			}
			if sr == nil {
				var derr *DatumError
				if sr, derr = s.lookup(key, ns, &d, o); derr != nil {
					if errors.Is(derr, ErrTooManySeries) {
						s.opts.Logger.Warn("metrics: snapshot has more series than MaxSeries; the rest are dropped", "max_series", s.opts.MaxSeries)
						return nil
					}
					return fmt.Errorf("series %s: %w", ns+" "+d.MetricName, derr)
				}
				sr.unit = unit
			}
			s.restoreSlot(sr, e, &src)
		}
	}
	return r.err
}

// seriesHead reads what names a series in a snapshot: its namespace, its
// metric name and dimensions (into d) and its unit.
func (r *snapReader) seriesHead() (ns string, d Datum, unit Unit) {
	ns = r.string()
	d.MetricName = r.string()
	unit = Unit(r.string())
	d.Dimensions = make([]Dimension, r.uvarint(MaxDimensions))
	for i := range d.Dimensions {
		d.Dimensions[i] = Dimension{Name: r.string(), Value: r.string()}
	}
	return ns, d, unit
}

// slot reads one slot of a series, with the epoch at the snapshot's
// resolution. ok is false when the slot does not make sense (a level out
// of range, a negative count, min above max); a failed read is left in
// r.err.
func (r *snapReader) slot() (src slot, ok bool) {
	src.epoch = r.varint()
	src.count, src.sum, src.min, src.max = r.float(), r.float(), r.float(), r.float()
	level := r.byte()
	nb := r.uvarint(maxSnapBuckets)
	if r.err != nil {
		return slot{}, true
	}
	if level > maxLevel || math.IsNaN(src.count) || src.count < 0 || src.min > src.max {
		return slot{}, false
	}
	if nb > 0 {
		src.sk = &sketch{level: level, b: make([]uint64, nb)}
		for i := range src.sk.b {
			src.sk.b[i] = math.Float64bits(r.float())
		}
	}
	return src, true
}

// restoreSlot merges a slot read from a snapshot into sr's slot for epoch e.
func (s *Store) restoreSlot(sr *series, e int64, src *slot) {
	sl := s.slotAt(sr, e, true)
	if sl.epoch != e {
		sl.reset(e)
	}
	sr.bytes += sl.merge(src)
	sr.last = max(sr.last, e)
}

// merge adds src's samples to sl and returns the change in bytes.
func (sl *slot) merge(src *slot) int64 {
	if src.count == 0 {
		return 0
	}
	var grown int64
	srcSingle := src.sk == nil || len(src.sk.b) == 0
	dstSingle := sl.sk == nil || len(sl.sk.b) == 0
	if !srcSingle || sl.count > 0 && !(dstSingle && sl.min == src.min) {
		if sl.sk == nil {
			sl.sk = &sketch{}
			grown += sketchBytes(0)
		}
		var scratch [1]uint64
		bs, level := src.buckets(scratch[:0])
		if len(sl.sk.b) == 0 {
			// Samples so far all equal min; an empty sketch takes any level.
			sl.sk.level = level
			if sl.count > 0 {
				grown += sl.sk.add(sl.min, cnt(sl.count))
			}
		}
		for sl.sk.level < level {
			sl.sk.collapse()
		}
		for _, w := range bs {
			grown += sl.sk.addKey(relevel(w>>countBits, level, sl.sk.level), w&countMask)
		}
	}
	if sl.count == 0 {
		sl.min, sl.max = src.min, src.max
	}
	sl.count += src.count
	sl.sum += src.sum
	sl.min = math.Min(sl.min, src.min)
	sl.max = math.Max(sl.max, src.max)
	return grown
}
