using System;

namespace BmadGuard
{
    /// <summary>How one alert went through one channel (Send-BmadAlert writes one per channel).</summary>
    public sealed class BmadAlertDelivery
    {
        internal BmadAlertDelivery(string store, string channel, string severity, bool delivered, int attempts, string? error, bool test)
        {
            Store = store;
            Channel = channel;
            Severity = severity;
            Delivered = delivered;
            Attempts = attempts;
            Error = error;
            Test = test;
        }

        /// <summary>The store the alert is about.</summary>
        public string Store { get; }

        /// <summary>The channel: slack, webhook, email or audit, with URLs shown without their secret part.</summary>
        public string Channel { get; }

        /// <summary>Info, Warning, Error or Critical.</summary>
        public string Severity { get; }

        /// <summary>True when the channel accepted the alert.</summary>
        public bool Delivered { get; }

        /// <summary>How many attempts were made (retries with backoff).</summary>
        public int Attempts { get; }

        /// <summary>Why delivery failed (secrets redacted); null when delivered.</summary>
        public string? Error { get; }

        /// <summary>True for a -Test alert.</summary>
        public bool Test { get; }
    }
}
