namespace Midge.Transport.Http;

/// <summary>A request the API refuses: the status and EMQX's <c>{"code": ..., "message": ...}</c>.</summary>
internal sealed class ApiError(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string Code { get; } = code;

    public static ApiError BadRequest(string message) => new(400, "BAD_REQUEST", message);

    public static ApiError NotFound(string code, string message) => new(404, code, message);
}
