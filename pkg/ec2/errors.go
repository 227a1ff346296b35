package ec2

import (
	"context"
	"errors"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// ErrInstanceNotFound is wrapped by lookups that find no instance.
var ErrInstanceNotFound = errors.New("instance not found")

// EC2 error codes the package branches on.
const (
	codeInstanceNotFound  = "InvalidInstanceID.NotFound"
	codeInstanceMalformed = "InvalidInstanceID.Malformed"
)

// ErrorCode returns the AWS error code carried by err, or "" if err is not an
// AWS API error.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// ErrorSummary returns "Code: message" for an AWS API error, without the
// operation wrapping and per-request ID the SDK adds, so that repeated
// failures read the same (and Events about them aggregate). Other errors are
// returned as err.Error().
func ErrorSummary(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if msg := apiErr.ErrorMessage(); msg != "" {
			return apiErr.ErrorCode() + ": " + msg
		}
		return apiErr.ErrorCode()
	}
	return err.Error()
}

// IsThrottle reports whether err is an EC2 throttling error such as
// RequestLimitExceeded, as classified by the SDK's retryer.
func IsThrottle(err error) bool {
	if err == nil {
		return false
	}
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
}

// codeLabel bounds the error code used as a metric label: well-formed AWS
// codes pass through, anything else becomes "other".
var codeLabelRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]{0,63}$`)

func codeLabel(err error) string {
	if err == nil {
		return "ok"
	}
	code := ErrorCode(err)
	switch {
	case code == "":
		if errors.Is(err, context.DeadlineExceeded) {
			return "timeout"
		}
		if errors.Is(err, context.Canceled) {
			return "canceled"
		}
		return "error"
	case codeLabelRE.MatchString(code):
		return code
	default:
		return "other"
	}
}
