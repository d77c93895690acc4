package server

import (
	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsapi"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/maintenance"
)

// buildAWS adds the AWS-compatible endpoint and the instances' metadata
// service to the API (docs/design.md §14).
func (c *controller) buildAWS(deps *api.Deps) error {
	var err error
	deps.AWS, err = awsEndpoint(c.cfg, *deps, c.sched)
	return err
}

// awsEndpoint is the endpoint over deps with the access keys of
// api.aws_credentials_file. A follower's (no groups, no scheduler) checks
// the keys' signatures and forwards the calls to the leader.
func awsEndpoint(cfg *config.Config, deps api.Deps, sched *maintenance.Scheduler) (api.AWSEndpoint, error) {
	var keys []awsapi.Key
	if path := cfg.API.AWSCredentialsFile; path != "" {
		var err error
		if keys, err = awsapi.LoadKeys(path); err != nil {
			return nil, err
		}
	}
	if sched == nil {
		// Not a nil *Scheduler in the interface, which would not be nil.
		return awsapi.New(deps, keys, nil), nil
	}
	return awsapi.New(deps, keys, sched), nil
}

// awsEnv is what an instance gets to reach the endpoint and its metadata
// service: the variables the AWS CLI and SDKs honour. The metadata
// endpoint ends with "/": botocore appends "latest/..." to it as it is,
// and a script's "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/..." works too.
func (c *controller) awsEnv(id string) []string {
	return []string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + c.apiURL + api.IMDSPrefix + c.creds.IMDSKey(id) + "/",
		"AWS_ENDPOINT_URL=" + c.apiURL + api.AWSPrefix,
		"AWS_REGION=" + awsid.Region,
		"AWS_DEFAULT_REGION=" + awsid.Region,
	}
}
