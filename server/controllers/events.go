package controllers

import "github.com/minik-dev/minik/server/record"

// EventRecorder records core/v1 Events about objects (see package record).
type EventRecorder = record.EventRecorder

// DiscardEvents is an EventRecorder that records nothing.
var DiscardEvents = record.Discard

// ComponentControllerManager is the source component of the controllers'
// events.
const ComponentControllerManager = "minik-controller-manager"

// recorderOr returns r, or DiscardEvents when r is nil.
func recorderOr(r EventRecorder) EventRecorder {
	if r == nil {
		return DiscardEvents
	}
	return r
}
