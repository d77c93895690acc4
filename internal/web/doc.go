// Package web owns the dashboard: its HTML, JavaScript and CSS, embedded in
// the binary and served under /ui/. The pages read the JSON API under /v1/
// from the browser and follow GET /v1/events?follow=true for live updates;
// nothing is loaded from the internet and there is no build step.
//
// It must not know the API's Go types or any component of the controller:
// the assets speak to the API over HTTP like any other client.
package web
