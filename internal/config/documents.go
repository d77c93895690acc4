package config

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Documents (runbooks) as the config names them: window tasks, alarm
// remediations and Alertmanager routes name a document and pass it
// parameters. Whether the document exists is checked when it runs; the
// documents themselves belong to internal/runbook.

// documentName reports whether a runbook name can name a document: the
// runbook library finds one by its file name in a directory.
func documentName(name string) bool {
	return !strings.ContainsAny(name, `/\`) && !strings.HasPrefix(name, ".")
}

const documentNameRule = `a document name has no / or \ and does not start with "."`

// pseudoParam finds {{ NAME }} in a task's parameter values.
var pseudoParam = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// documentParameters checks the parameters a window task or a remediation
// passes to its document.
func (v *validator) documentParameters(params map[string]string, p path) {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		kp := p.key(k)
		if strings.TrimSpace(k) == "" {
			v.keyErrorf(kp, "parameter name must not be empty")
			continue
		}
		// Only two pseudo-parameters are substituted; a misspelt one
		// would reach the document as literal text.
		for _, m := range pseudoParam.FindAllStringSubmatch(params[k], -1) {
			if name := m[1]; strings.HasPrefix(strings.ToUpper(name), "TARGET_") && name != "TARGET_ID" && name != "TARGET_GROUP" {
				v.errorf(kp, "parameter %s: unknown %s: use {{ TARGET_ID }} or {{ TARGET_GROUP }}", k, m[0])
			}
		}
	}
}
