package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Request bodies are bounded. A body over its endpoint's limit is refused
// with 413 naming the limit: at once, before reading anything, when its
// Content-Length says so, else as soon as the limit is passed (a chunked
// body is read at most one byte past it, and the connection is closed
// rather than drained). Nothing of a refused body is kept.
const (
	// MaxBody bounds the small JSON bodies: scale, terminate, approve,
	// cancel, restart, register and deregister targets, run a window, and
	// the session.
	MaxBody = 64 << 10
	// MaxRunBody bounds POST /v1/executions: a document's parameters.
	MaxRunBody = 1 << 20
	// MaxMetricsBody bounds a PutMetricData body: 1000 datums of 150 values
	// each fit.
	MaxMetricsBody = 4 << 20
	// MaxAlertmanagerBody bounds an Alertmanager webhook delivery.
	MaxAlertmanagerBody = 4 << 20
)

// readBody reads a whole body of at most limit bytes into buf.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, buf *bytes.Buffer) error {
	if r.ContentLength > limit {
		return tooLarge(r, limit)
	}
	if r.Body == nil {
		return nil // an in-process request without a body
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge(r, limit)
	case err != nil:
		return fmt.Errorf("%w: body: %v", errInvalid, err)
	}
	return nil
}

func tooLarge(r *http.Request, limit int64) error {
	return fmt.Errorf("%w: the body of %s %s is limited to %d bytes", errTooLarge, r.Method, r.URL.Path, limit)
}

// decode reads a JSON body of at most limit bytes into v: one value, no
// field v does not have, nothing after it. An empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength > limit {
		return tooLarge(r, limit)
	}
	if r.Body == nil {
		return nil // an in-process request without a body (a server's never is nil)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == io.EOF {
		return nil
	}
	var mbe *http.MaxBytesError
	if err == nil {
		// One value: a second one, or trailing garbage, is a mistake.
		switch _, terr := dec.Token(); {
		case terr == io.EOF:
		case terr == nil:
			err = errors.New("unexpected data after the JSON value")
		case errors.As(terr, &mbe):
			err = terr
		default:
			err = fmt.Errorf("after the JSON value: %v", terr)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return tooLarge(r, limit)
	}
	return fmt.Errorf("%w: body: %v", errInvalid, err)
}

// noBody is the body of the POSTs that take none: empty, or {}.
type noBody struct{}
