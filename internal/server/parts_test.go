package server

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestPartsStopInReverseOfStart pins the lifecycle rule every part relies
// on: a part starts after and stops before every part it was built after,
// a failed start stops what was built, and each part stops once.
func TestPartsStopInReverseOfStart(t *testing.T) {
	tests := []struct {
		name     string
		failAt   string // part whose start fails ("" none)
		wantErr  bool
		wantTrip []string
	}{
		{
			name:     "all start in order and stop in reverse",
			wantTrip: []string{"start a", "start c", "stop c", "stop b", "stop a"},
		},
		{
			name:     "a failed start stops every part, started or only built",
			failAt:   "c",
			wantErr:  true,
			wantTrip: []string{"start a", "start c", "stop c", "stop b", "stop a"},
		},
		{
			name:     "the first failure ends the starts",
			failAt:   "a",
			wantErr:  true,
			wantTrip: []string{"start a", "stop c", "stop b", "stop a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trip []string
			var p parts
			for _, name := range []string{"a", "b", "c"} {
				var start func(context.Context) error
				if name != "b" { // b is made ready by building it
					start = func(context.Context) error {
						trip = append(trip, "start "+name)
						if name == tt.failAt {
							return errors.New("boom")
						}
						return nil
					}
				}
				p.add(name, start, func() { trip = append(trip, "stop "+name) })
			}
			err := p.start(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("start: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && err.Error() != "start "+tt.failAt+": boom" {
				t.Fatalf("error %q does not name the part", err)
			}
			p.stop()
			p.stop() // a second stop stops nothing again
			if !slices.Equal(trip, tt.wantTrip) {
				t.Fatalf("trip %v, want %v", trip, tt.wantTrip)
			}
		})
	}
}
