package cluster

import (
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/config"
)

func TestPlace(t *testing.T) {
	c := &config.Cluster{Hosts: []config.ClusterHost{
		{Name: "h1", Labels: map[string]string{"disk": "ssd"}},
		{Name: "h2"},
		{Name: "h3", Labels: map[string]string{"disk": "ssd"}},
	}}
	all := map[string]bool{"h1": true, "h2": true, "h3": true}
	any := &config.Placement{}
	tests := []struct {
		name       string
		pl         *config.Placement
		live       map[string]bool
		have, load map[string]int
		want       string
		err        string
	}{
		{"an empty cluster takes the first host", any, all, nil, nil, "h1", ""},
		{"the group spreads to the host with the fewest of its instances", any, all, map[string]int{"h1": 1, "h2": 1}, nil, "h3", ""},
		{"spread comes before the load of other groups", any, all, map[string]int{"h2": 1, "h3": 1}, map[string]int{"h1": 9, "h2": 1, "h3": 1}, "h1", ""},
		{"among equals, the least loaded host", any, all, nil, map[string]int{"h1": 2, "h2": 1, "h3": 2}, "h2", ""},
		{"a tie goes to the first in the config", any, all, map[string]int{"h1": 1, "h2": 1, "h3": 1}, map[string]int{"h1": 3, "h2": 3, "h3": 3}, "h1", ""},
		{"a host that is not a member gets no new work", any, map[string]bool{"h2": true, "h3": true}, nil, nil, "h2", ""},
		{"the host list narrows", &config.Placement{Hosts: []string{"h2", "h3"}}, all, map[string]int{"h2": 1}, nil, "h3", ""},
		{"labels narrow", &config.Placement{Labels: map[string]string{"disk": "ssd"}}, all, map[string]int{"h1": 1}, nil, "h3", ""},
		{"a group of two on two eligible hosts doubles up only when it must", &config.Placement{Labels: map[string]string{"disk": "ssd"}}, all, map[string]int{"h1": 1, "h3": 1}, map[string]int{"h3": 1}, "h1", ""},
		{"no eligible member: the error names the hosts that are down", &config.Placement{Hosts: []string{"h1", "h3"}}, map[string]bool{"h2": true}, nil, nil, "", "(h1, h3: not members)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Place(c, tt.pl, tt.live, tt.have, tt.load)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Place = %q, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Place = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
