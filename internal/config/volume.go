package config

import "path/filepath"

// Volumes: a group's persistent storage. Volumes have no defaults.

// Volume is persistent storage owned by the group, attached to exactly one
// instance at a time.
type Volume struct {
	// Name identifies the volume in the group: [a-z0-9][a-z0-9_-]*. Required.
	Name string `yaml:"name"`
	// MountPath is where the instance sees the volume (bind mount in a private
	// mount namespace, root only): absolute, not "/", unique in the group.
	// Optional; AUTOHEAL_VOLUME_<NAME> is always set.
	MountPath string `yaml:"mount_path"`
	// Init is a shell script run once, when the volume is empty, with
	// AUTOHEAL_VOLUME_<NAME> set (like mkfs on a new EBS volume). Default none.
	Init string `yaml:"init"`
}

func (v *validator) volumes(g *Group, gp path) {
	names := map[string]path{}  // by name
	vars := map[string]string{} // environment variable -> volume name
	mounts := map[string]path{} // by cleaned mount path
	for vi, vol := range g.Volumes {
		vp := gp.field("volumes").index(vi)
		np := vp.field("name")
		switch first, dup := names[vol.Name]; {
		case vol.Name == "":
			v.errorf(np, "volume name is required")
		case !itemName.MatchString(vol.Name):
			v.errorf(np, "volume name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters", vol.Name)
		case dup:
			v.errorf(np, "duplicate volume name %q (first at %s)", vol.Name, v.where(first))
		default:
			names[vol.Name] = np
			// The instance finds each volume through AUTOHEAL_VOLUME_<NAME>
			// and its fencing token through ..._TOKEN; "a-b" and "a_b", or
			// "a" and "a-token", would overwrite each other's variables.
			base := "AUTOHEAL_VOLUME_" + EnvName(vol.Name)
			for _, vr := range []string{base, base + "_TOKEN"} {
				if other, clash := vars[vr]; clash {
					v.errorf(np, "volume names %q and %q both set %s", other, vol.Name, vr)
					break
				}
			}
			vars[base], vars[base+"_TOKEN"] = vol.Name, vol.Name
		}
		if vol.MountPath != "" {
			mp := vp.field("mount_path")
			clean := filepath.Clean(vol.MountPath)
			switch first, dup := mounts[clean]; {
			case !filepath.IsAbs(vol.MountPath):
				v.errorf(mp, "mount_path %q must be absolute", vol.MountPath)
			case clean == "/":
				v.errorf(mp, "mount_path must not be /")
			case dup:
				v.errorf(mp, "mount_path %s is also used at %s", vol.MountPath, v.where(first))
			default:
				mounts[clean] = mp
			}
		}
	}
}
