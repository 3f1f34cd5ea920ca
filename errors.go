package realtime

import (
	"errors"
	"fmt"
)

// Error is an error the SDKs can see: a LeanCloud-compatible numeric code, the
// code's symbolic reason (as the JS SDK names it in src/error.js) and an
// optional human-readable detail.
//
// Codes 4100-4199 concern the session and double as websocket close codes;
// 4300-4399 conversations; 4400-4499 messages; 4200 is an internal error whose
// detail is never sent to a client.
type Error struct {
	Code   int    // LeanCloud error code, e.g. 4401
	Reason string // symbolic name, e.g. "INVALID_MESSAGING_TARGET"
	Detail string // optional explanation, safe to show to the client
	// AppCode is a code chosen by the host application (hooks); 0 when unset.
	AppCode int
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("realtime: %d %s: %s", e.Code, e.Reason, e.Detail)
	}
	return fmt.Sprintf("realtime: %d %s", e.Code, e.Reason)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, realtime.ErrMessageNotFound) works whatever the detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithDetail returns a copy of e with the detail set.
func (e *Error) WithDetail(format string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(format, args...)
	return &c
}

// LeanCloud-compatible error codes. The set follows the JS SDK's error table.
const (
	CodeAppNotAvailable        = 4100
	CodeSignatureFailed        = 4102
	CodeInvalidLogin           = 4103
	CodeSessionRequired        = 4105
	CodeLoginTimeout           = 4108
	CodeSessionConflict        = 4111
	CodeSessionTokenExpired    = 4112
	CodeKickedByApp            = 4115
	CodeMessageQuotaExceeded   = 4116
	CodeInternal               = 4200
	CodeConvSignatureFailed    = 4302
	CodeConvNotFound           = 4303
	CodeConvFull               = 4304
	CodeConvRejectedByApp      = 4305
	CodeConvNotAllowed         = 4308
	CodeConvUpdateRejected     = 4309
	CodeConvQueryFailed        = 4310
	CodeConvLogRejected        = 4312
	CodeConvMembershipNeeded   = 4317
	CodeConvTempBlacklisted    = 4315
	CodeConvUnauthorized       = 4320
	CodeUnknownRole            = 4321
	CodeTempConvExpired        = 4323
	CodeInvalidMessagingTarget = 4401
	CodeMessageRejectedByApp   = 4402
	CodeMessageOwnership       = 4403
	CodeMessageNotFound        = 4404
	CodeMessageUpdateRejected  = 4405
	CodeMessageEditDisabled    = 4406
	CodeMessageRecallDisabled  = 4407
	CodeBlacklistFull          = 4543
	CodeBlacklistSignature     = 4546
	CodeBlockedByConv          = 4548
	CodeSilencedListFull       = 4561
	CodeSilenced               = 4563
	// CodeKeywordFiltered is the (negative) patch reason code of a message
	// rewritten by the keyword filter.
	CodeKeywordFiltered = -4408
	// Codes below are this project's additions in LeanCloud's ranges, for
	// input LeanCloud answered with a generic error.
	CodeInvalidCommand  = 4201 // malformed or unknown command
	CodeMessageTooLarge = 4409 // message body over the configured limit
	CodeInvalidMessage  = 4410 // malformed message fields (ids, mentions, ...)
)

// Sentinel errors. Compare with errors.Is; details vary.
var (
	ErrAppNotAvailable      = &Error{Code: CodeAppNotAvailable, Reason: "APP_NOT_AVAILABLE"}
	ErrSignatureFailed      = &Error{Code: CodeSignatureFailed, Reason: "SIGNATURE_FAILED"}
	ErrInvalidLogin         = &Error{Code: CodeInvalidLogin, Reason: "INVALID_LOGIN"}
	ErrSessionRequired      = &Error{Code: CodeSessionRequired, Reason: "SESSION_REQUIRED"}
	ErrSessionConflict      = &Error{Code: CodeSessionConflict, Reason: "SESSION_CONFLICT"}
	ErrSessionTokenExpired  = &Error{Code: CodeSessionTokenExpired, Reason: "SESSION_TOKEN_EXPIRED"}
	ErrRateLimited          = &Error{Code: CodeMessageQuotaExceeded, Reason: "MESSAGE_SENT_QUOTA_EXCEEDED"}
	ErrInternal             = &Error{Code: CodeInternal, Reason: "INTERNAL_ERROR"}
	ErrInvalidCommand       = &Error{Code: CodeInvalidCommand, Reason: "INVALID_COMMAND"}
	ErrConvSignatureFailed  = &Error{Code: CodeConvSignatureFailed, Reason: "CONVERSATION_SIGNATURE_FAILED"}
	ErrConvNotFound         = &Error{Code: CodeConvNotFound, Reason: "CONVERSATION_NOT_FOUND"}
	ErrConvFull             = &Error{Code: CodeConvFull, Reason: "CONVERSATION_FULL"}
	ErrConvRejectedByApp    = &Error{Code: CodeConvRejectedByApp, Reason: "CONVERSATION_REJECTED_BY_APP"}
	ErrConvNotAllowed       = &Error{Code: CodeConvNotAllowed, Reason: "CONVERSATION_NOT_ALLOWED"}
	ErrConvUpdateRejected   = &Error{Code: CodeConvUpdateRejected, Reason: "CONVERSATION_UPDATE_REJECTED"}
	ErrConvQueryFailed      = &Error{Code: CodeConvQueryFailed, Reason: "CONVERSATION_QUERY_FAILED"}
	ErrConvLogRejected      = &Error{Code: CodeConvLogRejected, Reason: "CONVERSATION_LOG_REJECTED"}
	ErrConvMembershipNeeded = &Error{Code: CodeConvMembershipNeeded, Reason: "CONVERSATION_MEMBERSHIP_REQUIRED"}
	ErrTempConvExpired      = &Error{Code: CodeTempConvExpired, Reason: "TEMPORARY_CONVERSATION_EXPIRED"}
	ErrConvTempBlacklisted  = &Error{Code: CodeConvTempBlacklisted, Reason: "CONVERSATION_TEMPORARY_BLACKLISTED"}
	ErrConvUnauthorized     = &Error{Code: CodeConvUnauthorized, Reason: "CONVERSATION_OPERATION_UNAUTHORIZED"}
	ErrUnknownRole          = &Error{Code: CodeUnknownRole, Reason: "UNKNOWN_CONVERSATION_ROLE"}
	ErrBlacklistFull        = &Error{Code: CodeBlacklistFull, Reason: "BLACKLIST_FULL"}
	ErrBlacklistSignature   = &Error{Code: CodeBlacklistSignature, Reason: "BLACKLIST_SIGNATURE_FAILED"}
	ErrBlockedByConv        = &Error{Code: CodeBlockedByConv, Reason: "BLOCKED_BY_CONV"}
	ErrSilencedListFull     = &Error{Code: CodeSilencedListFull, Reason: "SILIENCED_MEMBER_LIST_FULL"}
	// ErrSilenced keeps LeanCloud's spelling of the reason.
	ErrSilenced              = &Error{Code: CodeSilenced, Reason: "SILIENCED"}
	ErrInvalidTarget         = &Error{Code: CodeInvalidMessagingTarget, Reason: "INVALID_MESSAGING_TARGET"}
	ErrMessageRejected       = &Error{Code: CodeMessageRejectedByApp, Reason: "MESSAGE_REJECTED_BY_APP"}
	ErrMessageOwnership      = &Error{Code: CodeMessageOwnership, Reason: "MESSAGE_OWNERSHIP_REQUIRED"}
	ErrMessageNotFound       = &Error{Code: CodeMessageNotFound, Reason: "MESSAGE_NOT_FOUND"}
	ErrMessageUpdateRejected = &Error{Code: CodeMessageUpdateRejected, Reason: "MESSAGE_UPDATE_REJECTED_BY_APP"}
	ErrMessageEditDisabled   = &Error{Code: CodeMessageEditDisabled, Reason: "MESSAGE_EDIT_DISABLED"}
	ErrMessageRecallDisabled = &Error{Code: CodeMessageRecallDisabled, Reason: "MESSAGE_RECALL_DISABLED"}
	ErrMessageTooLarge       = &Error{Code: CodeMessageTooLarge, Reason: "MESSAGE_TOO_LARGE"}
	ErrInvalidMessage        = &Error{Code: CodeInvalidMessage, Reason: "INVALID_MESSAGE"}
)

// AsError returns err as an *Error the client may see. Errors that are not
// *Error (database failures, bugs) become ErrInternal without their text:
// internal details are logged by the caller, never sent.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal
}
