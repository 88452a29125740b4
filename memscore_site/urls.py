from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "memscore admin"
admin.site.site_title = "memscore admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Every user's own password (the admin's page is for staff only). Django's
    # views: the old password asked, the new one validated, the session kept.
    path("password/", auth_views.PasswordChangeView.as_view(template_name="registration/change_password.html"),
         name="password_change"),
    path("password/done/",
         auth_views.PasswordChangeDoneView.as_view(template_name="registration/change_password_done.html"),
         name="password_change_done"),
    path("", include("scoring.urls")),
]
