// Package config owns autoheal's configuration file: its YAML schema, the
// defaults of every field, and its validation.
//
// Load and Parse return either a Config in which every default is filled
// in and every path is absolute, or *Errors listing every problem of the
// file as FILE:LINE:COL: message. Unknown fields are errors, and a config
// is never half valid: code that receives a *Config may use it as is.
//
// Each feature has one file that holds its types, its defaults (the
// Default* constants and a setDefaults) and its checks (methods of the
// validator), and its tests in the _test.go of the same name; the golden
// testdata/*.bad.yaml files, which TestBadConfigs runs, are mostly named
// after the feature they break:
//
//	config.go       Config, the whole file; Validate fills each feature's
//	                defaults, then runs each feature's checks in order
//	group.go        groups: name, capacity (min, max, desired), api_role
//	launch.go       launch template, instance environment, parameters, ports
//	volume.go       volumes
//	address.go      addresses, and the host ports they share with listeners
//	healthcheck.go  group health checks
//	heal.go         heal policy and lifecycle hooks
//	lb.go           load balancers, listeners, TLS
//	targetgroup.go  target groups, members, static targets, target checks
//	maintenance.go  maintenance windows and scheduled actions
//	documents.go    document (runbook) names and parameters, as tasks,
//	                remediations and routes give them
//	metrics.go      the metric store
//	notify.go       channels, and references to them
//	alarm.go        alarms and their actions (remediate, restart, replace)
//	alertmanager.go the Alertmanager receiver's routes
//	api.go          auth tokens and API host names
//	cluster.go      the cluster (etcd, lease TTL, hosts) and groups' placement
//
// What the features share is in load.go (reading and decoding a file),
// schema.go (the schema check and the positions of values), validate.go
// (the validator, names, messages), units.go (durations, sizes, signals)
// and schedule.go (cron schedules, time zones, counts and percentages).
//
// The package decides what a valid config is; it knows nothing about
// running it. It starts no process, opens no socket, and touches no state
// directory; the checks it makes on the host are those a reader of the file
// could make (a command exists and is executable, a workdir is a
// directory, a user exists, a certificate and its key load as a pair).
// What a field does at run time belongs to the packages that act on it and
// is described in docs/config-reference.md.
package config
