package diag

import (
	"fmt"
	"strings"
	"testing"
)

func TestErr(t *testing.T) {
	if (Errors{}).Err() != nil {
		t.Fatal("no problem must be a nil error")
	}
	es := Errors{{File: "f", Line: 3, Col: 1, Msg: "c"}, {File: "f", Line: 1, Col: 2, Msg: "a"}, {File: "f", Line: 3, Col: 1, Msg: "c"}, {File: "f", Msg: "no place"}}
	if got, want := es.Err().Error(), "f: no place\nf:1:2: a\nf:3:1: c"; got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	var many Errors
	for i := range 250 {
		many = append(many, Error{File: "f", Line: i + 1, Col: 1, Msg: fmt.Sprint(i)})
	}
	got := *many.Err().(*Errors)
	if len(got) != Max || !strings.Contains(got[Max-1].Msg, "too many problems (250)") {
		t.Fatalf("%d problems, last %q", len(got), got[len(got)-1].Msg)
	}
}
