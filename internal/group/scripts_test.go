package group

import (
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

func TestLaunchScripts(t *testing.T) {
	cfg := config.Group{
		Launch:  config.Launch{UserData: "echo ud"},
		Volumes: []config.Volume{{Name: "data", Init: "mkfs"}, {Name: "logs"}},
		Hooks: config.Hooks{
			Launch:    []config.Hook{{Name: "a", Script: "echo a", HeartbeatTimeout: config.Duration(time.Second), DefaultResult: "continue"}, {Name: "b", Script: "echo b", DefaultResult: "abandon"}},
			Terminate: []config.Hook{{Name: "a", Script: "echo bye", HeartbeatTimeout: config.Duration(2 * time.Second)}, {Name: "b", Script: "echo b"}},
		},
	}
	var keys []string
	for _, s := range launchScripts(cfg) {
		keys = append(keys, s.Key+":"+s.Kind+":"+s.Phase)
	}
	want := "volume/data:volume:launch volume/logs:volume:launch user_data:user_data:launch launch/a:hook:launch launch/b:hook:launch"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("launch scripts %s\nwant %s", got, want)
	}
	ls := launchScripts(cfg)
	if ls[0].Timeout != volumeInitTimeout || ls[2].Timeout != userDataTimeout || ls[3].Timeout != time.Second || ls[3].DefaultResult != "continue" {
		t.Fatalf("bounds or results lost: %+v", ls)
	}
	ts := terminateScripts(cfg)
	if len(ts) != 2 || ts[0].Key != "terminate/a" || ts[0].Phase != "terminate" || ts[0].Key == ls[3].Key {
		t.Fatalf("terminate scripts %+v: a terminate hook's key must differ from a launch hook's of the same name", ts)
	}
	if ts[1].Key != "terminate/b" || ts[0].Timeout != 2*time.Second {
		t.Fatalf("terminate scripts %+v: hooks run in their config order, each bounded by its heartbeat_timeout", ts)
	}
	if len(launchScripts(config.Group{})) != 0 {
		t.Fatal("scripts for a group without any")
	}
}

func TestResumeScript(t *testing.T) {
	tests := []struct {
		state string
		want  scriptAct
	}{
		{"", actRun},
		{scriptStarted, actSettle},
		{scriptOK, actDone},
		{scriptFailed, actDone},
		{scriptLost, actDone},
	}
	for _, tt := range tests {
		t.Run("state "+tt.state, func(t *testing.T) {
			if got := resumeScript(tt.state); got != tt.want {
				t.Fatalf("resumeScript(%q) = %s, want %s", tt.state, got, tt.want)
			}
		})
	}
}

func TestSucceeded(t *testing.T) {
	for state, want := range map[string]bool{scriptOK: true, scriptFailed: false, scriptLost: false, scriptStarted: false, "": false} {
		if got := succeeded(state); got != want {
			t.Errorf("succeeded(%q) = %v, want %v", state, got, want)
		}
	}
}

func TestProceeds(t *testing.T) {
	hook := func(phase, def string) script {
		return script{Kind: kindHook, Phase: phase, Name: "h", DefaultResult: def}
	}
	tests := []struct {
		name string
		s    script
		ok   bool
		want bool
	}{
		{"a launch hook that succeeded", hook("launch", "abandon"), true, true},
		{"a failed launch hook with continue goes on", hook("launch", "continue"), false, true},
		{"a failed launch hook with abandon stops the launch", hook("launch", "abandon"), false, false},
		{"a failed terminate hook goes on whatever its default_result", hook("terminate", "abandon"), false, true},
		{"user_data that succeeded", script{Kind: kindUserData, Phase: "launch"}, true, true},
		{"failed user_data stops the launch", script{Kind: kindUserData, Phase: "launch"}, false, false},
		{"failed volume init stops the launch", script{Kind: kindVolume, Phase: "launch"}, false, false},
		{"volume init that succeeded", script{Kind: kindVolume, Phase: "launch"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proceeds(tt.s, tt.ok); got != tt.want {
				t.Fatalf("proceeds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAbandonReason(t *testing.T) {
	tests := []struct {
		s     script
		state string
		want  string
	}{
		{script{Kind: kindVolume, Phase: "launch", Name: "data"}, scriptFailed, "volume data init failed"},
		{script{Kind: kindUserData, Phase: "launch", Name: "user_data"}, scriptFailed, "user_data failed"},
		{script{Kind: kindHook, Phase: "launch", Name: "check"}, scriptFailed, "launch hook check failed"},
		{script{Kind: kindHook, Phase: "launch", Name: "check"}, scriptLost, "launch hook check interrupted by a controller restart"},
		{script{Kind: kindUserData, Phase: "launch", Name: "user_data"}, scriptLost, "user_data interrupted by a controller restart"},
	}
	for _, tt := range tests {
		if got := abandonReason(tt.s, tt.state); got != tt.want {
			t.Errorf("abandonReason(%s, %s) = %q, want %q", tt.s.Key, tt.state, got, tt.want)
		}
	}
}

func TestScriptPhase(t *testing.T) {
	for key, want := range map[string]string{"terminate/a": "terminate", "launch/a": "launch", "user_data": "launch", "volume/terminate": "launch", "terminate/": "launch"} {
		if got := scriptPhase(key); got != want {
			t.Errorf("scriptPhase(%q) = %q, want %q", key, got, want)
		}
	}
}
