package runbook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/limits"
)

// doc is a valid document of n sleep steps and p parameters, with a
// script of the given size in its description.
func doc(steps, params, script int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "schemaVersion: \"0.3\"\ndescription: %s\nparameters:\n", strings.Repeat("d", script))
	for i := range params {
		fmt.Fprintf(&b, "  P%d: {type: String, default: x}\n", i)
	}
	b.WriteString("mainSteps:\n")
	for i := range steps {
		fmt.Fprintf(&b, "- {name: s%d, action: aws:sleep, inputs: {Duration: PT1S}}\n", i)
	}
	return b.String()
}

// TestDocumentLimits runs each limit of a document through Parse: at the
// limit the document is valid, one beyond it is refused at the first
// thing beyond.
func TestDocumentLimits(t *testing.T) {
	tests := []struct {
		name        string
		under, over string
		want        string
	}{
		{"steps", doc(limits.Steps, 1, 1), doc(limits.Steps+1, 1, 1),
			"d.yaml:506:3: mainSteps: 501 exceeds limit 500 (steps per document)"},
		{"parameters", doc(1, limits.DocParameters, 1), doc(1, limits.DocParameters+1, 1),
			"d.yaml:204:3: parameters: 201 exceeds limit 200 (parameters per document)"},
		{"scalar size", doc(1, 1, 256<<10), doc(1, 1, 256<<10+1),
			"d.yaml:2:14: scalar exceeds limit 262144 bytes (document scalar size)"},
		{"file size", doc(1, 1, 1) + strings.Repeat("#", int(limits.Document.Size)-len(doc(1, 1, 1))),
			doc(1, 1, 1) + strings.Repeat("#", int(limits.Document.Size)-len(doc(1, 1, 1))+1),
			"d.yaml:1:1: file size exceeds limit 1048576 bytes (document file size)"},
		{"invalid UTF-8", doc(1, 1, 1), "schemaVersion: \"0.3\"\ndescription: caf\xe9\n",
			"d.yaml:2:17: invalid UTF-8 (byte 0xe9): the file must be UTF-8 text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("d.yaml", []byte(tt.under)); err != nil {
				t.Errorf("at the limit: %.300v", err)
			}
			_, err := Parse("d.yaml", []byte(tt.over))
			if err == nil || err.Error() != tt.want {
				t.Errorf("beyond the limit:\n got %.300v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestLibraryRefusesLargeFiles: a document file of the documents
// directory beyond the size limit is refused, read only up to the limit.
func TestLibraryRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	big := doc(1, 1, 1) + strings.Repeat("#", 50<<20)
	if err := os.WriteFile(filepath.Join(dir, "big.yaml"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewLibrary(dir).Get("big")
	want := filepath.Join(dir, "big.yaml") + ":1:1: file size exceeds limit 1048576 bytes (document file size)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
