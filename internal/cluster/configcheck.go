package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/config"
)

// Every host must run the same config: the first to join records its own
// (as canonical JSON: comments, layout and key order do not count), and
// every other compares. A host whose config differs is refused, with the
// differences named by their paths in the file.

// configRecord is the value of the config key.
type configRecord struct {
	Hash string          `json:"hash"`
	Host string          `json:"host"` // who recorded it
	At   time.Time       `json:"at"`
	Tree json.RawMessage `json:"tree"`
}

// ConfigMismatchError is a host's config that differs from the cluster's.
type ConfigMismatchError struct {
	Host  string    // the host refused
	By    string    // the host that recorded the cluster's config
	At    time.Time // when
	Diffs []string  // the first differences, each "path: the cluster has X, this host has Y"
	More  int       // differences not listed
}

func (e *ConfigMismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s's config differs from the cluster's (recorded by host %s at %s); every host must load the same file:",
		e.Host, e.By, e.At.UTC().Format(time.RFC3339))
	for _, d := range e.Diffs {
		b.WriteString("\n  ")
		b.WriteString(d)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  (%d more)", e.More)
	}
	b.WriteString("\nto change the cluster's config, run `autoheal cluster set-config --config FILE` with the new file, then restart each host with it")
	return b.String()
}

// canonical turns the text of a config file into the JSON of its values:
// the same for two files that say the same thing.
func canonical(data []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("cannot read the config for the cluster: %w", err)
	}
	b, err := json.Marshal(v) // map keys sorted
	if err != nil {
		return nil, fmt.Errorf("cannot record the config for the cluster: %w", err)
	}
	return b, nil
}

func hashOf(tree []byte) string {
	s := sha256.Sum256(tree)
	return hex.EncodeToString(s[:])
}

// checkConfig records data as the cluster's config if there is none, or
// compares it with the recorded one.
func checkConfig(ctx context.Context, cli *clientv3.Client, c *config.Cluster, host string, data []byte) error {
	tree, err := canonical(data)
	if err != nil {
		return err
	}
	rec := configRecord{Hash: hashOf(tree), Host: host, At: time.Now().UTC(), Tree: tree}
	val, _ := json.Marshal(rec)
	key := configKey(c)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("etcd: recording the cluster's config: %w", err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return fmt.Errorf("etcd: the cluster's config vanished while read; try again")
	}
	var have configRecord
	if err := json.Unmarshal(kvs[0].Value, &have); err != nil {
		return fmt.Errorf("etcd: the cluster's config record at %s is not autoheal's: %w", key, err)
	}
	if have.Hash == rec.Hash {
		return nil
	}
	var a, b any
	if err := json.Unmarshal(have.Tree, &a); err != nil {
		return fmt.Errorf("etcd: the cluster's config record at %s is not autoheal's: %w", key, err)
	}
	_ = json.Unmarshal(tree, &b)
	diffs := diff(a, b)
	e := &ConfigMismatchError{Host: host, By: have.Host, At: have.At}
	const show = 5
	e.Diffs = diffs[:min(len(diffs), show)]
	e.More = len(diffs) - len(e.Diffs)
	return e
}

// SetConfig records data as the cluster's config, replacing the one
// recorded. Hosts that joined keep running with theirs until restarted.
func SetConfig(ctx context.Context, cli *clientv3.Client, c *config.Cluster, host string, data []byte) error {
	tree, err := canonical(data)
	if err != nil {
		return err
	}
	val, _ := json.Marshal(configRecord{Hash: hashOf(tree), Host: host, At: time.Now().UTC(), Tree: tree})
	_, err = cli.Put(ctx, configKey(c), string(val))
	return err
}

// diff lists the differences between the cluster's tree a and this host's
// b (values decoded from JSON), each at its path, in the file's terms:
// "groups[0].launch.command: the cluster has "x", this host has "y"".
func diff(a, b any) []string {
	var out []string
	diffAt("", a, b, &out)
	return out
}

func diffAt(p string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := make([]string, 0, len(av)+len(bv))
			for k := range av {
				keys = append(keys, k)
			}
			for k := range bv {
				if _, ok := av[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				x, inA := av[k]
				y, inB := bv[k]
				kp := join(p, k)
				switch {
				case !inA:
					*out = append(*out, fmt.Sprintf("%s: the cluster has none, this host has %s", kp, show(y)))
				case !inB:
					*out = append(*out, fmt.Sprintf("%s: the cluster has %s, this host has none", kp, show(x)))
				default:
					diffAt(kp, x, y, out)
				}
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			if len(av) != len(bv) {
				*out = append(*out, fmt.Sprintf("%s: the cluster has %d items, this host has %d", orTop(p), len(av), len(bv)))
			}
			for i := range min(len(av), len(bv)) {
				diffAt(p+"["+strconv.Itoa(i)+"]", av[i], bv[i], out)
			}
			return
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	switch {
	case bytes.Equal(ja, jb):
	case sensitive(p):
		*out = append(*out, fmt.Sprintf("%s: differs (a secret: values not shown)", orTop(p)))
	default:
		*out = append(*out, fmt.Sprintf("%s: the cluster has %s, this host has %s", orTop(p), show(a), show(b)))
	}
}

// sensitive reports whether the value at p may be a secret (a channel's
// secret, routing key or URL, a password): a message names it, never
// prints it.
func sensitive(p string) bool {
	last := p[strings.LastIndexByte(p, '.')+1:]
	for _, w := range []string{"secret", "password", "routing_key", "url", "token"} {
		if strings.Contains(last, w) {
			return true
		}
	}
	return false
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func orTop(p string) string {
	if p == "" {
		return "(the whole file)"
	}
	return p
}

// show renders a value for a message, cut at 60 bytes.
func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
