"""The sync doctor: find, explain and repair lip-sync problems in any talking-head clip."""
