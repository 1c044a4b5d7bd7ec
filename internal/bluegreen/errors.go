package bluegreen

import (
	"errors"
	"fmt"
)

// PermanentError is a failure no retry can fix: a missing or ambiguous
// deployment group, a group or service without load balancer info.
type PermanentError struct{ msg string }

func (e *PermanentError) Error() string { return e.msg }

// Permanent returns a PermanentError.
func Permanent(format string, args ...any) error {
	return &PermanentError{msg: fmt.Sprintf(format, args...)}
}

// ActiveDeploymentError: the group already deploys something (another
// event's deployment, or one started by hand). It passes: retry later.
type ActiveDeploymentError struct {
	Group Group
	Err   error
}

func (e *ActiveDeploymentError) Error() string {
	return fmt.Sprintf("deployment group %s already has an active deployment; retrying once it ends: %v", e.Group, e.Err)
}

func (e *ActiveDeploymentError) Unwrap() error { return e.Err }

// IsActiveDeployment reports whether err is an ActiveDeploymentError.
func IsActiveDeployment(err error) bool {
	var ad *ActiveDeploymentError
	return errors.As(err, &ad)
}
