package rules

import (
	"crypto/sha256"
	"encoding/hex"
)

// SHA256 is the hex SHA-256 of the rules file's bytes as Parse read them,
// computed once: a work item carries the one its intake resolved it with,
// so the worker can tell a rules file out of step with the intake's (a
// stack update under way) from a target the rules file no longer has. ""
// for a Config not parsed from a file.
func (c *Config) SHA256() string { return c.sha256 }

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// FileSHA256 is the SHA256 of the rules file r was parsed from ("" for a
// rule built by hand): what a work item for one of r's targets carries.
func (r *Rule) FileSHA256() string { return r.fileSHA256 }
