package limits

// Limits bound one kind of file. Every field is a maximum; a file at the
// limit is accepted, one unit beyond is refused.
type Limits struct {
	// Kind names the file in the limit names of messages: "config",
	// "document".
	Kind string
	// Size is the file's size in bytes.
	Size int64
	// Scalar is the size in bytes of one scalar, a key or a value, as
	// written in the file: a quoted scalar's text between its quotes
	// (escapes as written), a block scalar's lines with their indentation
	// and line breaks.
	Scalar int
	// Depth is how deeply mappings and lists nest; the top-level mapping
	// is depth 1.
	Depth int
	// Entries is the number of keys of one mapping or items of one list.
	Entries int
	// Nodes is the number of keys and list items in the whole file.
	Nodes int
}

// Names of the limits, as messages and the README's table give them.
const (
	NameSize    = "file size"
	NameScalar  = "scalar size"
	NameDepth   = "nesting depth"
	NameEntries = "entries per mapping or list"
	NameNodes   = "nodes per file"
)

// Config bounds the config file. A large real config (a hundred groups,
// each with its checks, hooks, parameters and alarms) is about 200 KiB,
// 20 000 nodes and depth 6; the limits leave a wide margin and still keep
// a hostile file under a second and a few tens of MB to refuse.
//
// Entries is the tightest: the YAML parser spends time quadratic in the
// number of keys of one block mapping (5 000 keys take 0.2 s, 40 000 take
// 5 s), and no mapping of the config has a reason to hold more than a
// thousand keys (env, tags, parameters); lists are bounded by the count
// limits below, all at most a thousand.
var Config = Limits{
	Kind:    "config",
	Size:    4 << 20,
	Scalar:  64 << 10,
	Depth:   32,
	Entries: 1000,
	Nodes:   50_000,
}

// Document bounds a runbook document (from the documents directory, the
// API, or `autoheal runbook validate`). Its scalars may be scripts
// (aws:runShellScript commands, aws:executeScript), so one may be as large
// as 256 KiB; SSM itself caps a whole document at 64 KiB for commands.
var Document = Limits{
	Kind:    "document",
	Size:    1 << 20,
	Scalar:  256 << 10,
	Depth:   32,
	Entries: 1000,
	Nodes:   50_000,
}

// Counts in a config, checked on the parsed config (config.CheckCounts).
// Each is far above a real deployment on one host and low enough that
// per-item work at start-up (a process per instance, a socket per
// listener, a goroutine per alarm) stays reasonable.
const (
	Groups             = 1000 // groups
	Volumes            = 64   // volumes per group
	Addresses          = 64   // addresses per group
	HealthChecks       = 32   // health checks per group
	Hooks              = 32   // launch plus terminate hooks per group
	Parameters         = 200  // parameters per group
	Tags               = 50   // tags per group or window target (as AWS)
	EnvVars            = 1000 // environment variables of a group's launch
	Args               = 1000 // arguments of a group's launch command
	Ports              = 64   // named ports per group
	LoadBalancers      = 100  // load balancers
	Listeners          = 100  // listeners per load balancer
	TargetGroups       = 100  // target groups per load balancer
	Targets            = 1000 // static targets plus member groups per target group
	MaintenanceWindows = 500  // maintenance windows
	WindowTasks        = 100  // tasks per maintenance window
	ScheduledActions   = 1000 // scheduled actions
	Channels           = 100  // notification channels
	Alarms             = 5000 // alarms
	AlarmActions       = 100  // actions per alarm state
	AlertRoutes        = 1000 // Alertmanager routes
	Tokens             = 1000 // API tokens
	APIHosts           = 100  // API allowed hosts
	ClusterHosts       = 100  // hosts of a cluster
	EtcdEndpoints      = 16   // etcd endpoints
	ActionParameters   = 200  // parameters of one window task or remediation
)

// Counts in a document, checked by runbook.Parse.
const (
	Steps         = 500 // mainSteps of one document
	DocParameters = 200 // parameters of one document
)
