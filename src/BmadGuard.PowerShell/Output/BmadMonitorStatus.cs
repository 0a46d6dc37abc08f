using System;
using BmadGuard.Core.Monitoring;

namespace BmadGuard
{
    /// <summary>Whether a monitor is running for a store, since when, and what it last did (Get-BmadMonitor).</summary>
    public sealed class BmadMonitorStatus
    {
        internal BmadMonitorStatus(MonitorStatus s)
        {
            var v = MonitorStatusView.From(s);
            Store = s.Store;
            Alive = s.Alive;
            LockHeld = s.LockHeld;
            HeartbeatFresh = s.HeartbeatFresh;
            Pid = s.Pid;
            By = s.By;
            Since = s.Started;
            Heartbeat = s.Heartbeat;
            HeartbeatAge = s.HeartbeatAge;
            LastCheck = v.LastCheckTime;
            LastCheckOk = v.LastCheckOk;
            LastActionTime = v.LastActionTime;
            LastAction = v.LastAction == null ? null : $"{v.LastAction} {v.LastActionTarget}: {v.LastActionOutcome}";
            LastActionMessage = v.LastActionMessage;
            Summary = s.Summary;
        }

        /// <summary>The store.</summary>
        public string Store { get; }

        /// <summary>True when a process holds the monitor lock and its heartbeat is fresh.</summary>
        public bool Alive { get; }

        /// <summary>True when a process holds the monitor lock (an OS lock: freed when the process dies).</summary>
        public bool LockHeld { get; }

        /// <summary>True when the last heartbeat is within three intervals plus two seconds.</summary>
        public bool HeartbeatFresh { get; }

        /// <summary>The monitor's process id (of the running or the last monitor).</summary>
        public int? Pid { get; }

        /// <summary>Who runs it: user@host pid N.</summary>
        public string? By { get; }

        /// <summary>When the monitor started.</summary>
        public DateTimeOffset? Since { get; }

        /// <summary>The last heartbeat.</summary>
        public DateTimeOffset? Heartbeat { get; }

        /// <summary>How old the last heartbeat is.</summary>
        public TimeSpan? HeartbeatAge { get; }

        /// <summary>When the store was last checked.</summary>
        public DateTimeOffset? LastCheck { get; }

        /// <summary>Whether the last check was clean.</summary>
        public bool? LastCheckOk { get; }

        /// <summary>When the monitor last acted (repair, restore, backup, alert, replay).</summary>
        public DateTimeOffset? LastActionTime { get; }

        /// <summary>The last action: what, on which target, with what outcome.</summary>
        public string? LastAction { get; }

        /// <summary>The last action's message (secrets redacted).</summary>
        public string? LastActionMessage { get; }

        /// <summary>One sentence for a person.</summary>
        public string Summary { get; }
    }
}
