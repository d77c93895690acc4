package cluster

import (
	"fmt"
	"strings"

	"github.com/autoheal/autoheal/internal/config"
)

// Place chooses the host of a group's new instance (docs/design.md#13-the-cluster):
// among the hosts its placement allows that are members now (a host whose
// lease lapsed, or that left, gets no new work), the one that runs the
// fewest of the group's instances (spread, as an Auto Scaling group
// balances its zones), then the fewest instances of every group, then the
// first in the config's order. have and load count live instances by host
// name: the group's own, and every group's.
func Place(c *config.Cluster, pl *config.Placement, live map[string]bool, have, load map[string]int) (string, error) {
	best := -1
	var down []string
	for i := range c.Hosts {
		h := &c.Hosts[i]
		if !pl.Allows(h) {
			continue
		}
		if !live[h.Name] {
			down = append(down, h.Name)
			continue
		}
		if best < 0 || fewer(h.Name, c.Hosts[best].Name, have, load) {
			best = i
		}
	}
	if best < 0 {
		return "", fmt.Errorf("no host the placement allows is a member of the cluster now (%s: not members)", strings.Join(down, ", "))
	}
	return c.Hosts[best].Name, nil
}

// fewer reports whether host a is a better choice than b, which comes
// before it in the config: fewer of the group's instances, then fewer in
// all (a tie keeps b).
func fewer(a, b string, have, load map[string]int) bool {
	if have[a] != have[b] {
		return have[a] < have[b]
	}
	return load[a] < load[b]
}
