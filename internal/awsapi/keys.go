package awsapi

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
)

// Access keys (docs/design.md §14) live in a file of the AWS CLI's own
// credentials format, one profile per key, with the autoheal role the key
// has, so that the same file (or the profile's lines) serves the client:
//
//	[ci]
//	aws_access_key_id = AKIAEXAMPLE0000001
//	aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//	autoheal_role = operator
//
// The file must be the controller's user's, mode 0600; the config only
// names it (api.aws_credentials_file), never holds a secret.

// Key is one access key.
type Key struct {
	// Name is the profile's name: what audit events call the caller.
	Name, ID, Secret, Role string
}

// MaxKeysFile bounds the keys file.
const MaxKeysFile = 1 << 20

var keyIDText = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)

// LoadKeys reads and checks the keys file.
func LoadKeys(path string) ([]Key, error) {
	b, err := api.ReadPrivate(path, MaxKeysFile)
	if err != nil {
		return nil, fmt.Errorf("api.aws_credentials_file: %w", err)
	}
	return ParseKeys(path, string(b))
}

// ParseKeys parses the keys file's text; errors name path:line.
func ParseKeys(path, text string) ([]Key, error) {
	var keys []Key
	var cur *Key
	start := 0
	done := func() error {
		if cur == nil {
			return nil
		}
		where := fmt.Sprintf("%s:%d: profile [%s]", path, start, cur.Name)
		switch {
		case cur.ID == "":
			return fmt.Errorf("%s has no aws_access_key_id", where)
		case cur.Secret == "":
			return fmt.Errorf("%s has no aws_secret_access_key", where)
		case len(cur.Secret) < 16:
			return fmt.Errorf("%s: aws_secret_access_key is shorter than 16 characters", where)
		case !slices.Contains(config.Roles, cur.Role):
			return fmt.Errorf("%s: autoheal_role %q: use one of %s", where, cur.Role, strings.Join(config.Roles, ", "))
		case strings.HasPrefix(cur.ID, api.InstanceAWSKeyPrefix):
			return fmt.Errorf("%s: access key ids starting %s are instances' (from the metadata service)", where, api.InstanceAWSKeyPrefix)
		}
		for _, k := range keys {
			if k.ID == cur.ID {
				return fmt.Errorf("%s: access key %s is also profile [%s]", where, k.ID, k.Name)
			}
			if k.Name == cur.Name {
				return fmt.Errorf("%s: profile [%s] is there twice", where, k.Name)
			}
		}
		keys = append(keys, *cur)
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: %q: a profile line is [NAME]", path, n, line)
			}
			if err := done(); err != nil {
				return nil, err
			}
			cur, start = &Key{Name: strings.TrimSpace(line[1 : len(line)-1])}, n
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || cur == nil {
			return nil, fmt.Errorf("%s:%d: expected [PROFILE] or KEY = VALUE under a profile", path, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "aws_access_key_id":
			if !keyIDText.MatchString(v) {
				return nil, fmt.Errorf("%s:%d: aws_access_key_id %q: 16 to 128 capital letters and digits", path, n, v)
			}
			cur.ID = v
		case "aws_secret_access_key":
			cur.Secret = v
		case "autoheal_role":
			cur.Role = v
		default:
			// Other settings of the CLI's profiles (region, output...)
			// are the client's.
		}
	}
	if err := done(); err != nil {
		return nil, err
	}
	return keys, nil
}
