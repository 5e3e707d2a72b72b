FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput -v 0
# Run as an unprivileged user: the code and static files stay owned by root (read-only to the process); only
# var/ (embedded mode, beat schedule) is writable.
RUN groupadd --system --gid 10001 opscore \
    && useradd --system --uid 10001 --gid opscore --no-create-home --home-dir /app opscore \
    && mkdir -p /app/var && chown opscore:opscore /app/var
USER 10001:10001
EXPOSE 8080
CMD ["python", "-m", "opscore_project.webserver"]
