using System;
using System.Collections.Specialized;
using System.Linq;
using BmadGuard.Core.Health;

namespace BmadGuard
{
    /// <summary>A store's health (Get-BmadHealth): Healthy, Degraded or Unhealthy, with each check and its evidence.</summary>
    public sealed class BmadHealthReport
    {
        internal BmadHealthReport(HealthReport r)
        {
            Store = r.Store;
            Status = r.Status.ToString();
            ExitCode = (int)r.Status;
            Checks = r.Checks.Select(c => new BmadHealthCheck(c)).ToArray();
            Duration = r.Duration;
            Time = r.Time;
        }

        /// <summary>The store.</summary>
        public string Store { get; }

        /// <summary>Healthy, Degraded or Unhealthy: the worst of the checks.</summary>
        public string Status { get; }

        /// <summary>0 healthy, 1 degraded, 2 unhealthy (as `bmadguard health` exits): use it as a script's exit code.</summary>
        public int ExitCode { get; }

        /// <summary>Every check: integrity, backup, monitor, probe, disk, quarantine, outbox.</summary>
        public BmadHealthCheck[] Checks { get; }

        /// <summary>How long the report took.</summary>
        public TimeSpan Duration { get; }

        /// <summary>When the report was made.</summary>
        public DateTimeOffset Time { get; }
    }

    /// <summary>One check of a health report and its evidence.</summary>
    public sealed class BmadHealthCheck
    {
        internal BmadHealthCheck(HealthCheck c)
        {
            Name = c.Name;
            Status = c.Status.ToString();
            Message = c.Message;
            Evidence = new OrderedDictionary(StringComparer.Ordinal);
            foreach (var kv in c.Evidence)
            {
                Evidence[kv.Key] = kv.Value;
            }
        }

        /// <summary>integrity, backup, monitor, probe, disk, quarantine or outbox.</summary>
        public string Name { get; }

        /// <summary>Healthy, Degraded or Unhealthy.</summary>
        public string Status { get; }

        /// <summary>What was found, for a person.</summary>
        public string Message { get; }

        /// <summary>The figures behind the verdict (ages, bytes, latencies, counts), as an ordered hashtable.</summary>
        public OrderedDictionary Evidence { get; }
    }
}
