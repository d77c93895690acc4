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
	// Kind is "local" (under the state dir, on this host: an instance
	// needing it runs here) or "shared" (in Path, on storage that every
	// host that may run the group mounts: NFS, CephFS, a SAN file system).
	// Default local. Shared needs a cluster.
	Kind string `yaml:"kind"`
	// Path is a shared volume's directory, the same on every host:
	// absolute. Required for shared, refused for local.
	Path string `yaml:"path"`
}

// Volume kinds.
const (
	VolumeLocal  = "local"
	VolumeShared = "shared"
)

// setDefaults fills a volume's kind.
func (vol *Volume) setDefaults() {
	if vol.Kind == "" {
		vol.Kind = VolumeLocal
	}
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
		v.volumeKind(&vol, vp)
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

func (v *validator) volumeKind(vol *Volume, vp path) {
	switch vol.Kind {
	case VolumeLocal:
		if vol.Path != "" {
			v.errorf(vp.field("path"), "path is for shared volumes; a local volume lives in the state dir (add kind: shared, or remove path)")
		}
	case VolumeShared:
		switch {
		case !v.c.Cluster.Enabled():
			v.errorf(vp.field("kind"), "a shared volume needs a cluster: on one host, use a local volume")
		case vol.Path == "":
			v.errorf(vp.field("path"), "a shared volume needs its path: the directory on shared storage, the same on every host")
		case !filepath.IsAbs(vol.Path) || filepath.Clean(vol.Path) == "/":
			v.errorf(vp.field("path"), "path %q must be an absolute directory other than /", vol.Path)
		}
	default:
		v.errorf(vp.field("kind"), "volume kind %q: use local or shared%s", vol.Kind, didYouMean(vol.Kind, VolumeLocal, VolumeShared))
	}
}
