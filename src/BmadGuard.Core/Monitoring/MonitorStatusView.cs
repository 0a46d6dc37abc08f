using System;
using System.Globalization;
using System.Text.Json;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// The monitor's last check and last action from <see cref="MonitorStatus.State"/> as plain values, so callers
    /// that must not touch System.Text.Json (the cmdlet assembly) can show them.
    /// </summary>
    public sealed class MonitorStatusView
    {
        private MonitorStatusView()
        {
        }

        public DateTimeOffset? LastCheckTime { get; private set; }
        public bool? LastCheckOk { get; private set; }
        public DateTimeOffset? LastActionTime { get; private set; }
        public string? LastAction { get; private set; }
        public string? LastActionTarget { get; private set; }
        public string? LastActionOutcome { get; private set; }
        public string? LastActionMessage { get; private set; }

        public static MonitorStatusView From(MonitorStatus status)
        {
            var v = new MonitorStatusView();
            if (status.State is not { } state || state.ValueKind != JsonValueKind.Object)
            {
                return v;
            }

            if (state.TryGetProperty("lastCheck", out var lc) && lc.ValueKind == JsonValueKind.Object)
            {
                v.LastCheckTime = Time(lc);
                v.LastCheckOk = lc.TryGetProperty("ok", out var ok) && (ok.ValueKind == JsonValueKind.True || ok.ValueKind == JsonValueKind.False) ? ok.GetBoolean() : (bool?)null;
            }

            if (state.TryGetProperty("lastAction", out var la) && la.ValueKind == JsonValueKind.Object)
            {
                v.LastActionTime = Time(la);
                v.LastAction = Str(la, "action");
                v.LastActionTarget = Str(la, "target");
                v.LastActionOutcome = Str(la, "outcome");
                v.LastActionMessage = Str(la, "message");
            }

            return v;
        }

        private static string? Str(JsonElement e, string name)
            => e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

        private static DateTimeOffset? Time(JsonElement e)
            => Str(e, "time") is string t && DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var parsed) ? parsed : (DateTimeOffset?)null;
    }
}
