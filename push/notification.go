package push

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/leanhub/realtime"
)

// BadgeCounter increments devices' badges, many in one write;
// realtime.DeviceStore is one.
type BadgeCounter interface {
	IncrementBadges(ctx context.Context, devices []realtime.Device) ([]int, error)
}

// Origin identifies the message a push is about.
type Origin struct {
	ConvID string
	From   string // sender client id
	MsgID  string
}

// Notifications builds one notification per device from r. When
// r.IncrementBadge is set it increments every device's badge through badges
// (one call for all of them) and writes each new number into that device's
// payload (badges may be nil otherwise); a device no longer registered gets
// no notification. now is the notifications' CreatedAt, from which their
// 7-day validity runs.
//
// Notification ids are derived from (MsgID, platform, token), so that
// building the same message's pushes twice yields the same ids and a store
// that ignores duplicate ids delivers once. Without a MsgID the ids are
// random.
func (r *Rendered) Notifications(ctx context.Context, badges BadgeCounter, devices []realtime.Device, origin Origin, now time.Time) ([]*realtime.Notification, error) {
	ns := make([]*realtime.Notification, 0, len(devices))
	var counts []int
	if r.IncrementBadge {
		if badges == nil {
			return nil, fmt.Errorf("push: badge %q needs a BadgeCounter", IncrementBadge)
		}
		var err error
		if counts, err = badges.IncrementBadges(ctx, devices); err != nil {
			return nil, fmt.Errorf("push: increment badges of %d devices: %w", len(devices), err)
		}
		if len(counts) != len(devices) {
			return nil, fmt.Errorf("push: %d badges for %d devices", len(counts), len(devices))
		}
	}
	for i, d := range devices {
		payload := r.Payload
		if r.IncrementBadge {
			if counts[i] < 0 {
				continue // unregistered meanwhile
			}
			d.Badge = counts[i]
			payload = r.WithBadge(counts[i])
		}
		ns = append(ns, &realtime.Notification{
			ID:        NotificationID(origin.MsgID, d),
			Device:    d,
			ConvID:    origin.ConvID,
			From:      origin.From,
			MsgID:     origin.MsgID,
			Payload:   payload,
			Profile:   r.Profile,
			TeamID:    r.TeamID,
			CreatedAt: now,
		})
	}
	return ns, nil
}

// NotificationID returns the id of the push of message msgID to device d,
// shaped as a UUID (so that APNs can take it as apns-id). It is stable for
// a non-empty msgID and random otherwise.
func NotificationID(msgID string, d realtime.Device) string {
	var b [16]byte
	if msgID == "" {
		rand.Read(b[:])
	} else {
		sum := sha256.Sum256([]byte(msgID + "\x00" + string(d.Platform) + "\x00" + d.Token))
		copy(b[:], sum[:16])
	}
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// isUUID reports whether s has the 8-4-4-4-12 hex shape of a UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
