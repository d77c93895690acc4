//go:build linux

package local

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// cred is the identity an application runs as.
type cred struct {
	Uid    uint32   `json:"uid"`
	Gid    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
}

// resolveUser turns Spec.User into a credential: "name", "uid", "name:group"
// or "uid:gid". A numeric uid without a passwd entry gets the group of the
// same number and no supplementary groups (not group 0, which would quietly
// give it root's group). nil means "stay who we are".
func resolveUser(spec string) (*cred, error) {
	if spec == "" {
		return nil, nil
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	var c cred
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		c.Uid, c.Gid = uint32(uid), uint32(uid)
		if u, err := user.LookupId(name); err == nil {
			if err := fillFromUser(&c, u); err != nil {
				return nil, fmt.Errorf("user %s: %w", spec, err)
			}
		}
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", spec, err)
		}
		if err := fillFromUser(&c, u); err != nil {
			return nil, fmt.Errorf("user %s: %w", spec, err)
		}
	}
	if hasGroup {
		gid, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			g, lerr := user.LookupGroup(group)
			if lerr != nil {
				return nil, fmt.Errorf("user %s: %w", spec, lerr)
			}
			gid, err = strconv.ParseUint(g.Gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("user %s: group id %q: %w", spec, g.Gid, err)
			}
		}
		c.Gid = uint32(gid)
	}
	if os.Geteuid() != 0 {
		if int(c.Uid) == os.Geteuid() && int(c.Gid) == os.Getegid() {
			return nil, nil // already that user; setgroups would fail without root
		}
		return nil, fmt.Errorf("user %s: switching user needs root", spec)
	}
	return &c, nil
}

func fillFromUser(c *cred, u *user.User) error {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return fmt.Errorf("gid %q: %w", u.Gid, err)
	}
	c.Uid, c.Gid = uint32(uid), uint32(gid)
	c.Groups = nil
	ids, _ := u.GroupIds()
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			c.Groups = append(c.Groups, uint32(g))
		}
	}
	return nil
}
