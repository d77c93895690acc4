package server

import (
	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsapi"
	"github.com/autoheal/autoheal/internal/awsid"
)

// buildAWS adds the AWS-compatible endpoint and the instances' metadata
// service to the API (docs/design.md §14), with the access keys of
// api.aws_credentials_file.
func (c *controller) buildAWS(deps *api.Deps) error {
	var keys []awsapi.Key
	if path := c.cfg.API.AWSCredentialsFile; path != "" {
		var err error
		if keys, err = awsapi.LoadKeys(path); err != nil {
			return err
		}
	}
	deps.AWS = awsapi.New(*deps, keys, c.sched)
	return nil
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
